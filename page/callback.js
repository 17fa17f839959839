// Loaded by the pages the callback shows when a sign-in cannot finish. The address still contains
// Microsoft's code and state, which are spent, but history and the address bar should not keep
// them, so the address is replaced by the bare callback path.
history.replaceState(null, "", location.pathname);
