// The broker's Entra app registration, created with the Microsoft Graph Bicep extension: a
// multi-tenant Web app with the delegated IMAP and SMTP permissions, its service principal, and a
// federated identity credential that trusts the Function App's managed identity, so the app has
// no secret to rotate. infra/scripts/register-app.sh does the same with the Azure CLI.
extension microsoftGraphV1

@description('Key that identifies the app registration across deployments, so that a new deployment updates it instead of creating another.')
param uniqueName string

@description('Display name of the app, shown on the consent prompt.')
param displayName string

@description('Callback URL of the broker, registered on the Web platform.')
param redirectUri string

@description('Accounts that may sign in: AzureADMultipleOrgs (work or school accounts of any tenant) or AzureADandPersonalMicrosoftAccount (also personal Microsoft accounts).')
@allowed([
  'AzureADMultipleOrgs'
  'AzureADandPersonalMicrosoftAccount'
])
param signInAudience string

@description('Principal (object) ID of the managed identity the app trusts as its credential. Empty creates no federated identity credential.')
param federatedIdentityPrincipalId string

@description('Audience of the managed identity token that the federated identity credential accepts: the cloud\'s token exchange audience.')
param tokenExchangeAudience string

var exchangeOnlineAppId = '00000002-0000-0ff1-ce00-000000000000' // Office 365 Exchange Online
var microsoftGraphAppId = '00000003-0000-0000-c000-000000000000' // Microsoft Graph

resource application 'Microsoft.Graph/applications@v1.0' = {
  uniqueName: uniqueName
  displayName: displayName
  signInAudience: signInAudience
  // Personal accounts require v2 access tokens for the app's own API, although the broker has none.
  api: {
    requestedAccessTokenVersion: 2
  }
  // The Web platform, not SPA: refresh tokens issued to an SPA redirect URI die after 24 hours.
  web: {
    redirectUris: [
      redirectUri
    ]
    implicitGrantSettings: {
      enableAccessTokenIssuance: false
      enableIdTokenIssuance: false
    }
  }
  // The delegated permissions the broker requests, so that one admin consent covers them all.
  // MSAL adds openid and profile to every sign-in, and the callback reads the signed-in account
  // from the ID token's preferred_username, which profile provides.
  requiredResourceAccess: [
    {
      resourceAppId: exchangeOnlineAppId
      resourceAccess: [
        {
          id: '195adc35-e27b-454b-a7ed-1ecdffa1c09f' // IMAP.AccessAsUser.All
          type: 'Scope'
        }
        {
          id: '76faac2a-0f20-42f1-928a-50de5b9dbe52' // SMTP.Send
          type: 'Scope'
        }
      ]
    }
    {
      resourceAppId: microsoftGraphAppId
      resourceAccess: [
        {
          id: '7427e0e9-2fba-42fe-b0c0-848c9e6a8182' // offline_access
          type: 'Scope'
        }
        {
          id: '37f7f235-527c-4136-accd-4a02d197296e' // openid
          type: 'Scope'
        }
        {
          id: '14dad69e-099b-42c9-810b-d002981feec1' // profile
          type: 'Scope'
        }
      ]
    }
  ]

  // The managed identity's token for the exchange audience is the app's client assertion.
  resource managedIdentityCredential 'federatedIdentityCredentials@v1.0' = if (!empty(federatedIdentityPrincipalId)) {
    name: '${application.uniqueName}/function-app-identity'
    description: 'The broker Function App\'s user-assigned managed identity'
    issuer: '${environment().authentication.loginEndpoint}${tenant().tenantId}/v2.0'
    subject: federatedIdentityPrincipalId
    audiences: [
      tokenExchangeAudience
    ]
  }
}

// The app's identity in its home tenant. Customer tenants get theirs at consent.
resource servicePrincipal 'Microsoft.Graph/servicePrincipals@v1.0' = {
  appId: application.appId
}

output clientId string = application.appId
