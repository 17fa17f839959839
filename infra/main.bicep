// The broker on Azure: one resource group with a Function App on the Flex Consumption plan, its
// Storage account, Key Vault, monitoring and user-assigned managed identity, and the Entra app
// registration that mailboxes consent to. `azd up` deploys it, as README.md beside this file says.
targetScope = 'subscription'

// azd environment

@minLength(1)
@maxLength(64)
@description('Name of the azd environment. It names the resource group and seeds the token that makes resource names unique.')
param environmentName string

@minLength(1)
@description('Azure region of every resource; it must offer the Flex Consumption plan.')
@metadata({
  azd: {
    type: 'location'
  }
})
param location string

@description('Name of the resource group to create. Empty means rg-<environmentName>.')
param resourceGroupName string = ''

// Hosting

@description('Host name of a custom domain already bound to the Function App, such as broker.example.com. Empty means the app\'s default host name. The callback URL on the app registration and BROKER_REDIRECT_URI use this host.')
param customDomainHostName string = ''

@description('Maximum number of instances the Flex Consumption plan scales the app out to.')
@minValue(40)
@maxValue(1000)
param maximumInstanceCount int = 100

@description('Memory of each instance, in MB.')
@allowed([
  2048
  4096
])
param instanceMemoryMB int = 2048

@description('Replication of the Storage account that holds the grant index. A lost index breaks every identifier, so choose zone or geo redundancy where the region offers it.')
@allowed([
  'Standard_LRS'
  'Standard_ZRS'
  'Standard_GRS'
  'Standard_GZRS'
])
param storageSku string = 'Standard_LRS'

@description('Days Key Vault keeps a deleted secret, or the deleted vault, before it is purged (7 to 90). Purge protection forbids purging earlier, and the value cannot change after the vault exists.')
@minValue(7)
@maxValue(90)
param keyVaultSoftDeleteRetentionDays int = 90

@description('Days the Log Analytics workspace keeps the broker\'s logs.')
@minValue(30)
@maxValue(730)
param logRetentionDays int = 30

// App registration and credential

@description('Whether this deployment creates the Entra app registration with the Microsoft Graph Bicep extension, which deploys in the public cloud only. Set it to false, always for brokerCloud usgov, after creating the app with infra/scripts/register-app.sh, and set existingClientId.')
param createAppRegistration bool = true

@description('Application (client) ID of an app registration created outside this template. Read only when createAppRegistration is false.')
param existingClientId string = ''

@description('How the broker proves itself to the identity platform: federated (the managed identity\'s token as a client assertion, nothing to rotate) or certificate (a Key Vault certificate named by clientCertificateName, whose public key must be uploaded to the app registration).')
@allowed([
  'federated'
  'certificate'
])
param clientCredential string = 'federated'

@description('Name of the Key Vault certificate of the app registration. Read only when clientCredential is certificate.')
param clientCertificateName string = ''

// Broker settings read by shared/config.ts. Each default is the broker's own default.

@description('BROKER_CLOUD: public (commercial Microsoft 365) or usgov (GCC High). It selects the mail scopes and the token exchange audience.')
@allowed([
  'public'
  'usgov'
])
param brokerCloud string = 'public'

@description('BROKER_SIGNIN_TENANT: organizations (any work or school account), common (also personal accounts), consumers, or one tenant ID or domain. common and consumers also make the app registration accept personal accounts.')
param brokerSignInTenant string = 'organizations'

@description('SITE_ALLOWLIST: comma-separated EQuIS sites this deployment serves, as *.suffix patterns or exact host names.')
param siteAllowlist string = '*.equisonline.com'

@description('TABLE_NAME_PREFIX: prefix of the two table names, <prefix>signins and <prefix>grants.')
param tableNamePrefix string = 'broker'

@description('SIGNIN_TIMEOUT_MINUTES: how long a started sign-in may take, in minutes.')
@minValue(2)
@maxValue(60)
param signInTimeoutMinutes int = 10

@description('REFRESH_SCHEDULE: NCRONTAB schedule (six fields, UTC) of the refresh timer.')
param refreshSchedule string = '0 */15 * * * *'

@description('REFRESH_AFTER_HOURS: the timer refreshes a grant whose refresh token is older than this many hours.')
@minValue(1)
@maxValue(1440)
param refreshAfterHours int = 24

@description('IDENTITY_TIMEOUT_SECONDS: a token or metadata request to the identity platform that takes longer fails as transient.')
@minValue(1)
@maxValue(120)
param identityTimeoutSeconds int = 15

@description('MIN_TOKEN_LIFETIME_MINUTES: every access token handed out has at least this many minutes left.')
@minValue(5)
@maxValue(60)
param minTokenLifetimeMinutes int = 15

@description('TOKEN_CACHE_SIZE: access tokens one instance keeps in memory.')
@minValue(100)
@maxValue(1000000)
param tokenCacheSize int = 10000

@description('GRANT_CACHE_SECONDS: how long one instance trusts a grant row it read, in seconds.')
@minValue(0)
@maxValue(300)
param grantCacheSeconds int = 10

@description('FAILED_ATTEMPTS_PER_ADDRESS: failed identifier attempts one client address may make per window before it gets 429.')
@minValue(1)
@maxValue(10000)
param failedAttemptsPerAddress int = 30

@description('FAILED_ATTEMPTS_PER_GRANT: wrong secrets for one grant per window before they get 429.')
@minValue(1)
@maxValue(10000)
param failedAttemptsPerGrant int = 10

@description('FAILED_ATTEMPTS_WINDOW_SECONDS: length of the failed-attempt windows, in seconds.')
@minValue(1)
@maxValue(86400)
param failedAttemptsWindowSeconds int = 600

@description('MAX_REFRESHES_PER_GRANT_PER_MINUTE: token renewals of one grant per minute on one instance.')
@minValue(1)
@maxValue(600)
param maxRefreshesPerGrantPerMinute int = 6

@description('REFRESH_CONCURRENCY: grants one timer run refreshes at once.')
@minValue(1)
@maxValue(64)
param refreshConcurrency int = 8

@description('DEGRADED_AFTER_DAYS: days without a successful refresh after which a grant is flagged degraded.')
@minValue(1)
@maxValue(60)
param degradedAfterDays int = 3

@description('NOTIFY_WEBHOOK_URL: URL that receives a signed event on every status change of a grant. Empty sends no events.')
param notifyWebhookUrl string = ''

@description('Name of the Key Vault secret that holds the HMAC key of the webhook events (NOTIFY_WEBHOOK_SECRET, at least 32 characters). Create the secret before setting notifyWebhookUrl.')
param notifyWebhookSecretName string = 'notify-webhook-secret'

var abbreviations = loadJsonContent('abbreviations.json')
var resourceToken = toLower(uniqueString(subscription().id, environmentName, location))
var tags = {
  'azd-env-name': environmentName
}

// azure.yaml deploys the service of this name to the resource that carries it as azd-service-name.
var serviceName = 'broker'
var siteTags = union(tags, {
  'azd-service-name': serviceName
})

// Per BROKER_CLOUD, the same values as the cloud profiles in shared/cloud.ts: the resource of the
// IMAP and SMTP scopes, and the audience of the managed identity token the app registration trusts.
var cloudProfiles = {
  public: {
    outlookResource: 'https://outlook.office.com'
    tokenExchangeAudience: 'api://AzureADTokenExchange'
  }
  usgov: {
    outlookResource: 'https://outlook.office365.us'
    tokenExchangeAudience: 'api://AzureADTokenExchangeUSGov'
  }
}
var outlookResource = cloudProfiles[brokerCloud].outlookResource
var mailScopes = '${outlookResource}/IMAP.AccessAsUser.All ${outlookResource}/SMTP.Send'

// Every resource of the broker, so that `azd down` removes them together.
resource rg 'Microsoft.Resources/resourceGroups@2024-03-01' = {
  name: empty(resourceGroupName) ? '${abbreviations.resourcesResourceGroups}${environmentName}' : resourceGroupName
  location: location
  tags: tags
}

module monitoring 'modules/monitoring.bicep' = {
  name: 'monitoring'
  scope: rg
  params: {
    location: location
    tags: tags
    logAnalyticsName: '${abbreviations.operationalInsightsWorkspaces}${resourceToken}'
    applicationInsightsName: '${abbreviations.insightsComponents}${resourceToken}'
    logRetentionDays: logRetentionDays
  }
}

module identity 'modules/identity.bicep' = {
  name: 'identity'
  scope: rg
  params: {
    location: location
    tags: tags
    name: '${abbreviations.managedIdentityUserAssignedIdentities}${resourceToken}'
  }
}

module storage 'modules/storage.bicep' = {
  name: 'storage'
  scope: rg
  params: {
    location: location
    tags: tags
    name: '${abbreviations.storageStorageAccounts}${resourceToken}'
    sku: storageSku
    deploymentContainerName: 'app-package'
  }
}

module keyVault 'modules/keyVault.bicep' = {
  name: 'keyVault'
  scope: rg
  params: {
    location: location
    tags: tags
    name: '${abbreviations.keyVaultVaults}${resourceToken}'
    softDeleteRetentionInDays: keyVaultSoftDeleteRetentionDays
  }
}

module roleAssignments 'modules/roleAssignments.bicep' = {
  name: 'roleAssignments'
  scope: rg
  params: {
    principalId: identity.outputs.principalId
    keyVaultName: keyVault.outputs.name
    storageAccountName: storage.outputs.name
    applicationInsightsName: monitoring.outputs.applicationInsightsName
  }
}

module functionApp 'modules/functionApp.bicep' = {
  name: 'functionApp'
  scope: rg
  params: {
    location: location
    planTags: tags
    siteTags: siteTags
    name: '${abbreviations.webSitesFunctions}${resourceToken}'
    planName: '${abbreviations.webServerFarms}${resourceToken}'
    identityId: identity.outputs.id
    deploymentContainerUrl: storage.outputs.deploymentContainerUrl
    maximumInstanceCount: maximumInstanceCount
    instanceMemoryMB: instanceMemoryMB
  }
}

// The host prefix is empty (host.json), so the callback function's route is the whole path.
var brokerHostName = empty(customDomainHostName) ? functionApp.outputs.defaultHostName : customDomainHostName
var redirectUri = 'https://${brokerHostName}/api/auth/callback'
var pageUrl = 'https://${brokerHostName}/microsoft365_oauth.html'

// common and consumers sign in personal accounts too, which the app registration must accept.
var personalAccountTenants = [
  'common'
  'consumers'
]
var signInAudience = contains(personalAccountTenants, toLower(brokerSignInTenant)) ? 'AzureADandPersonalMicrosoftAccount' : 'AzureADMultipleOrgs'

module appRegistration 'modules/appRegistration.bicep' = if (createAppRegistration) {
  name: 'appRegistration'
  scope: rg
  params: {
    uniqueName: 'm365-mail-broker-${resourceToken}'
    displayName: 'Microsoft 365 mail OAuth broker (${environmentName})'
    redirectUri: redirectUri
    signInAudience: signInAudience
    federatedIdentityPrincipalId: clientCredential == 'federated' ? identity.outputs.principalId : ''
    tokenExchangeAudience: cloudProfiles[brokerCloud].tokenExchangeAudience
  }
}

var clientId = createAppRegistration ? appRegistration.outputs.clientId : existingClientId

module appSettings 'modules/appSettings.bicep' = {
  name: 'appSettings'
  scope: rg
  params: {
    functionAppName: functionApp.outputs.name
    storageAccountName: storage.outputs.name
    managedIdentityClientId: identity.outputs.clientId
    applicationInsightsConnectionString: monitoring.outputs.connectionString
    clientId: clientId
    clientCredential: clientCredential
    clientCertificateName: clientCertificateName
    redirectUri: redirectUri
    brokerCloud: brokerCloud
    brokerSignInTenant: brokerSignInTenant
    mailScopes: mailScopes
    siteAllowlist: siteAllowlist
    tablesEndpoint: storage.outputs.tableEndpoint
    tableNamePrefix: tableNamePrefix
    keyVaultName: keyVault.outputs.name
    keyVaultUrl: keyVault.outputs.vaultUri
    signInTimeoutMinutes: signInTimeoutMinutes
    refreshSchedule: refreshSchedule
    refreshAfterHours: refreshAfterHours
    identityTimeoutSeconds: identityTimeoutSeconds
    minTokenLifetimeMinutes: minTokenLifetimeMinutes
    tokenCacheSize: tokenCacheSize
    grantCacheSeconds: grantCacheSeconds
    failedAttemptsPerAddress: failedAttemptsPerAddress
    failedAttemptsPerGrant: failedAttemptsPerGrant
    failedAttemptsWindowSeconds: failedAttemptsWindowSeconds
    maxRefreshesPerGrantPerMinute: maxRefreshesPerGrantPerMinute
    refreshConcurrency: refreshConcurrency
    degradedAfterDays: degradedAfterDays
    notifyWebhookUrl: notifyWebhookUrl
    notifyWebhookSecretName: notifyWebhookSecretName
  }
  // The host starts as soon as its settings exist, and its identity needs the storage roles then.
  dependsOn: [
    roleAssignments
  ]
}

output AZURE_LOCATION string = location
output AZURE_TENANT_ID string = tenant().tenantId
output AZURE_RESOURCE_GROUP string = rg.name
output AZURE_FUNCTION_APP_NAME string = functionApp.outputs.name
output AZURE_FUNCTION_APP_URL string = 'https://${functionApp.outputs.defaultHostName}'
output BROKER_PAGE_URL string = pageUrl
output BROKER_REDIRECT_URI string = redirectUri
output BROKER_CLIENT_ID string = clientId
output AZURE_KEY_VAULT_NAME string = keyVault.outputs.name
output AZURE_KEY_VAULT_ENDPOINT string = keyVault.outputs.vaultUri
output AZURE_STORAGE_ACCOUNT_NAME string = storage.outputs.name
output AZURE_STORAGE_TABLE_ENDPOINT string = storage.outputs.tableEndpoint
output AZURE_MANAGED_IDENTITY_NAME string = identity.outputs.name
output AZURE_MANAGED_IDENTITY_CLIENT_ID string = identity.outputs.clientId
output AZURE_MANAGED_IDENTITY_PRINCIPAL_ID string = identity.outputs.principalId
output AZURE_APPLICATION_INSIGHTS_NAME string = monitoring.outputs.applicationInsightsName
output AZURE_LOG_ANALYTICS_WORKSPACE_NAME string = monitoring.outputs.logAnalyticsName
