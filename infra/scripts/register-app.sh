#!/usr/bin/env bash
# Creates the broker's Entra app registration with the Azure CLI, for operators who cannot deploy
# infra/modules/appRegistration.bicep (the Microsoft Graph Bicep extension). It creates the same
# app: a multi-tenant Web app with the delegated IMAP.AccessAsUser.All and SMTP.Send permissions of
# Office 365 Exchange Online and offline_access, openid and profile of Microsoft Graph, its service
# principal, and a federated identity credential that trusts the Function App's managed identity.
#
# Run it by hand, signed in with `az login` to the tenant of the deployment, after a first
# `azd provision` with BROKER_CREATE_APP_REGISTRATION=false has created the Function App and the
# identity. Nothing is created unless every option is valid, and --dry-run prints the commands only.
#
# Usage:
#   infra/scripts/register-app.sh --redirect-uri URI --identity-principal-id GUID [options]
#
#   --redirect-uri URI            the broker's callback URL: azd env get-value BROKER_REDIRECT_URI
#   --identity-principal-id GUID  azd env get-value AZURE_MANAGED_IDENTITY_PRINCIPAL_ID
#   --display-name NAME           display name on the consent prompt
#                                 (default: Microsoft 365 mail OAuth broker)
#   --personal-accounts           also accept personal Microsoft accounts, for
#                                 BROKER_SIGNIN_TENANT common or consumers
#   --cloud public|usgov          BROKER_CLOUD of the deployment (default: public)
#   --dry-run                     print the az commands without running them
set -euo pipefail

exchange_online_app_id=00000002-0000-0ff1-ce00-000000000000
microsoft_graph_app_id=00000003-0000-0000-c000-000000000000
imap_access_as_user_all=195adc35-e27b-454b-a7ed-1ecdffa1c09f
smtp_send=76faac2a-0f20-42f1-928a-50de5b9dbe52
offline_access=7427e0e9-2fba-42fe-b0c0-848c9e6a8182
openid=37f7f235-527c-4136-accd-4a02d197296e
profile=14dad69e-099b-42c9-810b-d002981feec1
guid_pattern='^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$'

redirect_uri=""
principal_id=""
display_name="Microsoft 365 mail OAuth broker"
personal_accounts=false
cloud=public
dry_run=false

# Prints the Usage block of the comment above.
usage() {
  awk '/^# Usage:/ { found = 1 } /^set -euo/ { exit } found { sub(/^# ?/, ""); print }' "$0"
}

fail() {
  echo "register-app.sh: $*" >&2
  exit 2
}

while [ $# -gt 0 ]; do
  case "$1" in
    --redirect-uri) redirect_uri=${2:-}; shift 2 ;;
    --identity-principal-id) principal_id=${2:-}; shift 2 ;;
    --display-name) display_name=${2:-}; shift 2 ;;
    --personal-accounts) personal_accounts=true; shift ;;
    --cloud) cloud=${2:-}; shift 2 ;;
    --dry-run) dry_run=true; shift ;;
    -h | --help) usage; exit 0 ;;
    *) usage >&2; fail "unknown option $1" ;;
  esac
done

case "$redirect_uri" in
  https://*/api/auth/callback) ;;
  "") fail "--redirect-uri is missing; pass the value of: azd env get-value BROKER_REDIRECT_URI" ;;
  *) fail "--redirect-uri must be an https URL ending in /api/auth/callback, not $redirect_uri" ;;
esac
if [ -z "$principal_id" ]; then
  fail "--identity-principal-id is missing; pass the value of: azd env get-value AZURE_MANAGED_IDENTITY_PRINCIPAL_ID"
fi
if ! [[ "$principal_id" =~ $guid_pattern ]]; then
  fail "--identity-principal-id must be the managed identity's principal (object) ID, a GUID, not $principal_id"
fi
[ -n "$display_name" ] || fail "--display-name must not be empty"
case "$cloud" in
  public) audience=api://AzureADTokenExchange ;;
  usgov) audience=api://AzureADTokenExchangeUSGov ;;
  *) fail "--cloud must be public or usgov, not $cloud" ;;
esac

# Prints a command to stderr, then runs it unless this is a dry run.
run() {
  printf '+' >&2
  printf ' %q' "$@" >&2
  printf '\n' >&2
  if [ "$dry_run" = false ]; then
    "$@"
  fi
}

if ! command -v az >/dev/null 2>&1; then
  [ "$dry_run" = true ] || fail "the Azure CLI (az) is not installed"
  tenant_id="<tenant-id>"
  login_endpoint="<login-endpoint>"
elif tenant_id=$(az account show --query tenantId --output tsv 2>/dev/null); then
  login_endpoint=$(az cloud show --query endpoints.activeDirectory --output tsv)
elif [ "$dry_run" = true ]; then
  tenant_id="<tenant-id>"
  login_endpoint="<login-endpoint>"
else
  fail "not signed in to Azure; run az login to the tenant of the deployment first"
fi
issuer="${login_endpoint%/}/${tenant_id}/v2.0"

if [ "$dry_run" = false ]; then
  existing=$(az ad app list --display-name "$display_name" --query "[].appId" --output tsv)
  if [ -n "$existing" ]; then
    fail "an app named \"$display_name\" already exists (client ID $existing); pass another --display-name, or use that app"
  fi
fi

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

cat >"$work/required-resource-accesses.json" <<EOF
[
  {
    "resourceAppId": "$exchange_online_app_id",
    "resourceAccess": [
      { "id": "$imap_access_as_user_all", "type": "Scope" },
      { "id": "$smtp_send", "type": "Scope" }
    ]
  },
  {
    "resourceAppId": "$microsoft_graph_app_id",
    "resourceAccess": [
      { "id": "$offline_access", "type": "Scope" },
      { "id": "$openid", "type": "Scope" },
      { "id": "$profile", "type": "Scope" }
    ]
  }
]
EOF

cat >"$work/federated-credential.json" <<EOF
{
  "name": "function-app-identity",
  "description": "The broker Function App's user-assigned managed identity",
  "issuer": "$issuer",
  "subject": "$principal_id",
  "audiences": ["$audience"]
}
EOF

# The Web platform, not SPA: refresh tokens issued to an SPA redirect URI die after 24 hours.
app_id=$(run az ad app create \
  --display-name "$display_name" \
  --sign-in-audience AzureADMultipleOrgs \
  --web-redirect-uris "$redirect_uri" \
  --enable-access-token-issuance false \
  --enable-id-token-issuance false \
  --required-resource-accesses "@$work/required-resource-accesses.json" \
  --query appId --output tsv)
app_id=${app_id:-<client-id>}

# Personal accounts require v2 access tokens, which must be set before the audience allows them.
run az ad app update --id "$app_id" --set api.requestedAccessTokenVersion=2
if [ "$personal_accounts" = true ]; then
  run az ad app update --id "$app_id" --sign-in-audience AzureADandPersonalMicrosoftAccount
fi

run az ad sp create --id "$app_id" --output none
run az ad app federated-credential create --id "$app_id" \
  --parameters "@$work/federated-credential.json" --output none

if [ "$dry_run" = true ]; then
  for file in "$work"/*.json; do
    printf '\n%s:\n' "$(basename "$file")" >&2
    cat "$file" >&2
  done
  echo "Dry run: nothing was created." >&2
  exit 0
fi

cat <<EOF

Created the app registration with client ID $app_id.
Point the deployment at it and provision again:

  azd env set BROKER_CREATE_APP_REGISTRATION false
  azd env set BROKER_EXISTING_CLIENT_ID $app_id
  azd provision
EOF
