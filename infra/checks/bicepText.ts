/**
 * Reads the Bicep files of infra/ as text, for the repository's checks of the templates: no Bicep
 * compiler can be installed where the tests run. It understands the syntax these templates use
 * (comments, strings with interpolation, multi-line objects and arrays, decorators, nested
 * resources), not all of Bicep, and throws or reports a problem where it cannot read the text.
 */
import { readFileSync } from "node:fs";

export interface BicepFile {
  path: string;
  source: string;
  /** The source with comments and the contents of strings replaced by spaces, at the same offsets. */
  code: string;
  /** The source with comments replaced by spaces, at the same offsets. */
  text: string;
  /** Unterminated strings or comments and unbalanced brackets, each with its line. */
  problems: string[];
}

/** A value the reader does not evaluate, such as a function call or a reference, as its text. */
export class BicepExpression {
  constructor(readonly text: string) {}
}

export interface BicepEntry {
  value: BicepValue;
  /** Text of a `//` comment after the value on the same line. */
  comment: string | undefined;
  line: number;
}

export class BicepObject {
  constructor(readonly members: Map<string, BicepEntry>) {}

  get(key: string): BicepValue | undefined {
    return this.members.get(key)?.value;
  }
}

export class BicepArray {
  constructor(readonly items: BicepEntry[]) {}
}

export type BicepValue =
  string | number | boolean | null | BicepObject | BicepArray | BicepExpression;

export interface Declaration {
  /** `param`, `var`, `resource`, `module`, `output`, `targetScope`, `extension`, … */
  keyword: string;
  name: string;
  /** Offset of the keyword. */
  start: number;
  line: number;
  /** First line of each decorator above the declaration, such as `@description('…')`. */
  decorators: string[];
}

export interface ResourceDeclaration {
  symbol: string;
  /** Type and API version, such as `Microsoft.Web/sites@2024-04-01`. */
  type: string;
  start: number;
  line: number;
}

const openers = new Set(["(", "[", "{"]);
const closers: Record<string, string> = { ")": "(", "]": "[", "}": "{" };

export function readBicep(path: string): BicepFile {
  return scanBicep(path, readFileSync(path, "utf8"));
}

/** Separates code, strings and comments, and checks that strings, comments and brackets close. */
export function scanBicep(path: string, source: string): BicepFile {
  const code = source.split("");
  const text = source.split("");
  const problems: string[] = [];
  const open: { char: string; offset: number }[] = [];
  // Open strings and interpolations `${…}` inside them, innermost last, each interpolation with its
  // brace depth.
  const contexts: (
    { kind: "string" } | { kind: "interpolation"; depth: number }
  )[] = [];
  const blank = (from: number, to: number, alsoText: boolean) => {
    for (let index = from; index < to && index < source.length; index++) {
      if (source[index] === "\n") continue;
      code[index] = " ";
      if (alsoText) text[index] = " ";
    }
  };
  const problem = (offset: number, message: string) =>
    problems.push(`${path}:${lineOf(source, offset)}: ${message}`);

  let index = 0;
  while (index < source.length) {
    const char = source[index] ?? "";
    const context = contexts.at(-1);

    if (context?.kind === "string") {
      if (char === "\\") {
        blank(index, index + 2, false);
        index += 2;
        continue;
      }
      if (source.startsWith("${", index)) {
        blank(index, index + 2, false);
        contexts.push({ kind: "interpolation", depth: 0 });
        index += 2;
        continue;
      }
      if (char === "'") {
        contexts.pop();
        if (contexts.length > 0) blank(index, index + 1, false);
      } else {
        if (char === "\n") problem(index, "string not closed on its line");
        blank(index, index + 1, false);
      }
      index += 1;
      continue;
    }

    const interpolation =
      context?.kind === "interpolation" ? context : undefined;
    if (source.startsWith("//", index) || source.startsWith("/*", index)) {
      const isLine = source[index + 1] === "/";
      const end = source.indexOf(isLine ? "\n" : "*/", index + 2);
      if (end === -1 && !isLine) problem(index, "comment not closed");
      let stop = source.length;
      if (end !== -1) stop = isLine ? end : end + 2;
      blank(index, stop, true);
      index = stop;
    } else if (source.startsWith("'''", index)) {
      const end = source.indexOf("'''", index + 3);
      if (end === -1) problem(index, "multi-line string not closed");
      const stop = end === -1 ? source.length : end + 3;
      if (interpolation) blank(index, stop, false);
      else blank(index + 3, stop - 3, false);
      index = stop;
    } else if (char === "'") {
      if (interpolation) blank(index, index + 1, false);
      contexts.push({ kind: "string" });
      index += 1;
    } else if (interpolation) {
      if (char === "{") interpolation.depth += 1;
      if (char === "}") interpolation.depth -= 1;
      if (interpolation.depth < 0) contexts.pop();
      blank(index, index + 1, false);
      index += 1;
    } else {
      if (openers.has(char)) open.push({ char, offset: index });
      if (char in closers) {
        const last = open.at(-1);
        if (last?.char === closers[char]) open.pop();
        else problem(index, `"${char}" closes nothing that is open`);
      }
      index += 1;
    }
  }

  if (contexts.length > 0)
    problems.push(`${path}: a string is not closed at the end of the file`);
  for (const bracket of open)
    problem(bracket.offset, `"${bracket.char}" is never closed`);
  return { path, source, code: code.join(""), text: text.join(""), problems };
}

export function lineOf(source: string, offset: number): number {
  return source.slice(0, offset).split("\n").length;
}

/** Lists the top-level declarations with the decorators above each. */
export function topLevelDeclarations(file: BicepFile): Declaration[] {
  const declarations: Declaration[] = [];
  let decorators: string[] = [];
  let depth = 0;
  let lineStart = 0;

  for (const codeLine of file.code.split("\n")) {
    const startDepth = depth;
    depth += bracketBalance(codeLine);
    const trimmed = codeLine.trimStart();
    const start = lineStart + codeLine.length - trimmed.length;
    lineStart += codeLine.length + 1;
    // `#disable-next-line` and other pragmas belong to the next declaration like decorators.
    if (startDepth !== 0 || trimmed === "" || trimmed.startsWith("#")) continue;

    if (trimmed.startsWith("@")) {
      decorators.push(file.source.slice(start, lineStart - 1).trim());
      continue;
    }
    const match = /^([A-Za-z]+)(?:\s+([A-Za-z_][A-Za-z0-9_]*))?/.exec(trimmed);
    declarations.push({
      keyword: match?.[1] ?? trimmed,
      name: match?.[2] ?? "",
      start,
      line: lineOf(file.source, start),
      decorators,
    });
    decorators = [];
  }
  return declarations;
}

function bracketBalance(codeLine: string): number {
  let balance = 0;
  for (const char of codeLine) {
    if (openers.has(char)) balance += 1;
    if (char in closers) balance -= 1;
  }
  return balance;
}

/** Lists every resource declaration, nested ones included. */
export function resourceDeclarations(file: BicepFile): ResourceDeclaration[] {
  const resources: ResourceDeclaration[] = [];
  for (const match of file.code.matchAll(
    /\bresource\s+([A-Za-z_][A-Za-z0-9_]*)\s+'/g,
  )) {
    const quote = match.index + match[0].length - 1;
    resources.push({
      symbol: match[1] ?? "",
      type: file.source.slice(quote + 1, file.source.indexOf("'", quote + 1)),
      start: match.index,
      line: lineOf(file.source, match.index),
    });
  }
  return resources;
}

/**
 * Reads what follows `=` on the first line of a declaration: the default of a `param`, the value
 * of a `var` or an `output`. Returns undefined for a `param` without a default.
 */
export function declaredValue(
  file: BicepFile,
  declaration: Declaration,
): BicepValue | undefined {
  const lineEnd = file.code.indexOf("\n", declaration.start);
  const equals = file.code.indexOf("=", declaration.start);
  if (equals === -1 || (lineEnd !== -1 && equals > lineEnd)) return undefined;
  return new ValueReader(file, equals + 1).readValue();
}

/** Reads the object body of a resource or module, after any `existing` or `if (…)`. */
export function bodyOf(file: BicepFile, offset: number): BicepObject {
  const equals = file.code.indexOf("=", offset);
  let brace = equals;
  let depth = 0;
  for (; brace < file.code.length; brace++) {
    const char = file.code[brace];
    if (char === "(") depth += 1;
    if (char === ")") depth -= 1;
    if (char === "{" && depth === 0) break;
  }
  const value = new ValueReader(file, brace).readValue();
  if (!(value instanceof BicepObject)) {
    throw new Error(
      `${file.path}:${lineOf(file.source, offset)}: the body is not an object`,
    );
  }
  return value;
}

/** Reads Bicep literals. Anything else becomes a BicepExpression holding its text. */
class ValueReader {
  constructor(
    private readonly file: BicepFile,
    private position: number,
  ) {}

  readValue(): BicepValue {
    this.skipBlanks(true);
    const start = this.position;
    const rest = this.file.source.slice(start, start + 200);
    let value: BicepValue;

    if (rest.startsWith("{")) {
      value = this.readObject();
    } else if (rest.startsWith("[") && !/^\[\s*for\s/.test(rest)) {
      value = this.readArray();
    } else if (rest.startsWith("'") && !rest.startsWith("'''")) {
      value = this.readString();
    } else {
      return this.readExpression(start);
    }
    return this.atValueEnd() ? value : this.readExpression(start);
  }

  private readObject(): BicepObject {
    const members = new Map<string, BicepEntry>();
    this.position += 1;
    for (;;) {
      this.skipBlanks(true);
      if (this.file.code[this.position] === "}") break;
      this.failAtEnd("an object");
      if (/^resource\s/.test(this.file.code.slice(this.position))) {
        this.readExpression(this.position);
        continue;
      }
      const key = this.readKey();
      const value = this.readValue();
      const comment = this.readTrailingComment();
      members.set(key.name, { value, comment, line: key.line });
      this.skipSeparator();
    }
    this.position += 1;
    return new BicepObject(members);
  }

  private readArray(): BicepArray {
    const items: BicepEntry[] = [];
    this.position += 1;
    for (;;) {
      this.skipBlanks(true);
      if (this.file.code[this.position] === "]") break;
      this.failAtEnd("an array");
      const line = lineOf(this.file.source, this.position);
      const value = this.readValue();
      items.push({ value, comment: this.readTrailingComment(), line });
      this.skipSeparator();
    }
    this.position += 1;
    return new BicepArray(items);
  }

  private readKey(): { name: string; line: number } {
    const line = lineOf(this.file.source, this.position);
    const rest = this.file.source.slice(this.position);
    const match = /^(?:([A-Za-z_][A-Za-z0-9_]*)|'([^'\\]*)')\s*:/.exec(rest);
    if (match === null) {
      throw new Error(
        `${this.file.path}:${line}: expected "key:" in an object`,
      );
    }
    this.position += match[0].length;
    return { name: match[1] ?? match[2] ?? "", line };
  }

  private readString(): string | BicepExpression {
    const start = this.position;
    const end = this.file.code.indexOf("'", start + 1);
    this.position = end + 1;
    const raw = this.file.source.slice(start + 1, end);
    if (raw.includes("${")) {
      return new BicepExpression(this.file.source.slice(start, end + 1));
    }
    const escapes: Record<string, string> = { n: "\n", r: "\r", t: "\t" };
    return raw.replace(/\\(.)/g, (_all, char: string) => escapes[char] ?? char);
  }

  /** Reads up to a newline, comma or closing bracket that is outside brackets. */
  private readExpression(start: number): BicepValue {
    let depth = 0;
    let index = start;
    for (; index < this.file.code.length; index++) {
      const char = this.file.code[index] ?? "";
      if (openers.has(char)) depth += 1;
      else if (char in closers) {
        if (depth === 0) break;
        depth -= 1;
      } else if (depth === 0 && (char === "\n" || char === ",")) break;
      else if (depth === 0 && this.startsComment(index)) break;
    }
    this.position = index;
    const expression = this.file.text.slice(start, index).trim();
    if (/^-?\d+$/.test(expression)) return Number(expression);
    if (expression === "true" || expression === "false")
      return expression === "true";
    if (expression === "null") return null;
    return new BicepExpression(expression);
  }

  private atValueEnd(): boolean {
    this.skipSpaces();
    const rest = this.file.source.slice(this.position, this.position + 2);
    return (
      rest === "" || /^[\n\r,}\])]/.test(rest) || rest === "//" || rest === "/*"
    );
  }

  private readTrailingComment(): string | undefined {
    this.skipSpaces();
    if (!this.file.source.startsWith("//", this.position)) return undefined;
    const end = this.file.source.indexOf("\n", this.position);
    const stop = end === -1 ? this.file.source.length : end;
    const comment = this.file.source.slice(this.position + 2, stop).trim();
    this.position = stop;
    return comment;
  }

  private startsComment(index: number): boolean {
    return (
      this.file.code[index] === " " && this.file.source.startsWith("//", index)
    );
  }

  private skipSeparator(): void {
    this.skipSpaces();
    if (this.file.code[this.position] === ",") this.position += 1;
  }

  private skipSpaces(): void {
    while (/[ \t\r]/.test(this.file.source[this.position] ?? ""))
      this.position += 1;
  }

  /** Skips spaces and comments, and line breaks when `lineBreaks` is set. */
  private skipBlanks(lineBreaks: boolean): void {
    for (;;) {
      this.skipSpaces();
      const char = this.file.source[this.position] ?? "";
      // Between values a blanked character that is not white space belongs to a comment.
      const isComment =
        this.file.code[this.position] === " " && !/\s/.test(char);
      if (isComment || (lineBreaks && char === "\n")) {
        while (this.file.code[this.position] === " ") this.position += 1;
        if (this.file.source[this.position] === "\n" && lineBreaks)
          this.position += 1;
      } else {
        return;
      }
    }
  }

  private failAtEnd(construct: string): void {
    if (this.position >= this.file.source.length) {
      throw new Error(`${this.file.path}: ${construct} is not closed`);
    }
  }
}

/** Turns a literal into plain data, with each expression as its text. */
export function toPlain(value: BicepValue | undefined): unknown {
  if (value instanceof BicepObject) {
    const entries = [...value.members].map(([key, entry]) => [
      key,
      toPlain(entry.value),
    ]);
    return Object.fromEntries(entries);
  }
  if (value instanceof BicepArray)
    return value.items.map((item) => toPlain(item.value));
  if (value instanceof BicepExpression) return value.text;
  return value;
}
