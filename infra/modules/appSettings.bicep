// The Function App's app settings: the Functions host's identity-based storage and telemetry, and
// every broker setting that shared/config.ts reads except those listed in infra/README.md as not
// set on Azure. A deployment replaces all app settings with these.

@description('Name of the Function App whose settings these are.')
param functionAppName string

@description('Name of the Storage account the Functions host uses (AzureWebJobsStorage).')
param storageAccountName string

@description('Client ID of the user-assigned managed identity the app runs as.')
param managedIdentityClientId string

@description('Connection string of the Application Insights component; ingestion also needs the identity\'s Entra token.')
param applicationInsightsConnectionString string

@description('BROKER_CLIENT_ID: application (client) ID of the app registration.')
param clientId string

@description('BROKER_CLIENT_CREDENTIAL: federated or certificate.')
param clientCredential string

@description('Name of the Key Vault certificate, used only when clientCredential is certificate.')
param clientCertificateName string

@description('BROKER_REDIRECT_URI: the callback URL registered on the app registration.')
param redirectUri string

@description('BROKER_CLOUD: public or usgov.')
param brokerCloud string

@description('BROKER_SIGNIN_TENANT: tenant segment of the sign-in authority.')
param brokerSignInTenant string

@description('BROKER_MAIL_SCOPES: the IMAP and SMTP scopes of the cloud, space-separated.')
param mailScopes string

@description('SITE_ALLOWLIST: the EQuIS sites this deployment serves.')
param siteAllowlist string

@description('TABLES_ENDPOINT: Table service URL of the Storage account.')
param tablesEndpoint string

@description('TABLE_NAME_PREFIX: prefix of the two table names.')
param tableNamePrefix string

@description('Name of the Key Vault, for the Key Vault reference of the webhook key.')
param keyVaultName string

@description('KEY_VAULT_URL: URL of the Key Vault that keeps the refresh tokens.')
param keyVaultUrl string

@description('SIGNIN_TIMEOUT_MINUTES.')
param signInTimeoutMinutes int

@description('REFRESH_SCHEDULE.')
param refreshSchedule string

@description('REFRESH_AFTER_HOURS.')
param refreshAfterHours int

@description('IDENTITY_TIMEOUT_SECONDS.')
param identityTimeoutSeconds int

@description('MIN_TOKEN_LIFETIME_MINUTES.')
param minTokenLifetimeMinutes int

@description('TOKEN_CACHE_SIZE.')
param tokenCacheSize int

@description('GRANT_CACHE_SECONDS.')
param grantCacheSeconds int

@description('FAILED_ATTEMPTS_PER_ADDRESS.')
param failedAttemptsPerAddress int

@description('FAILED_ATTEMPTS_PER_GRANT.')
param failedAttemptsPerGrant int

@description('FAILED_ATTEMPTS_WINDOW_SECONDS.')
param failedAttemptsWindowSeconds int

@description('MAX_REFRESHES_PER_GRANT_PER_MINUTE.')
param maxRefreshesPerGrantPerMinute int

@description('REFRESH_CONCURRENCY.')
param refreshConcurrency int

@description('DEGRADED_AFTER_DAYS.')
param degradedAfterDays int

@description('NOTIFY_WEBHOOK_URL: empty sends no events.')
param notifyWebhookUrl string

@description('Name of the Key Vault secret that holds the webhook key.')
param notifyWebhookSecretName string

resource functionApp 'Microsoft.Web/sites@2024-04-01' existing = {
  name: functionAppName
}

resource appSettings 'Microsoft.Web/sites/config@2024-04-01' = {
  parent: functionApp
  name: 'appsettings'
  properties: {
    // Host storage through the managed identity, because the account accepts no key.
    AzureWebJobsStorage__accountName: storageAccountName
    AzureWebJobsStorage__credential: 'managedidentity'
    AzureWebJobsStorage__clientId: managedIdentityClientId
    APPLICATIONINSIGHTS_CONNECTION_STRING: applicationInsightsConnectionString
    APPLICATIONINSIGHTS_AUTHENTICATION_STRING: 'ClientId=${managedIdentityClientId};Authorization=AAD'

    BROKER_CLIENT_ID: clientId
    BROKER_CLIENT_CREDENTIAL: clientCredential
    // The broker rejects a certificate name in federated mode, so it is set only for certificate.
    BROKER_CLIENT_CERTIFICATE_NAME: clientCredential == 'certificate' ? clientCertificateName : ''
    MANAGED_IDENTITY_CLIENT_ID: managedIdentityClientId
    BROKER_REDIRECT_URI: redirectUri
    BROKER_CLOUD: brokerCloud
    BROKER_SIGNIN_TENANT: brokerSignInTenant
    BROKER_MAIL_SCOPES: mailScopes
    SITE_ALLOWLIST: siteAllowlist
    TABLES_ENDPOINT: tablesEndpoint
    TABLE_NAME_PREFIX: tableNamePrefix
    KEY_VAULT_URL: keyVaultUrl
    SIGNIN_TIMEOUT_MINUTES: string(signInTimeoutMinutes)
    REFRESH_SCHEDULE: refreshSchedule
    REFRESH_AFTER_HOURS: string(refreshAfterHours)
    IDENTITY_TIMEOUT_SECONDS: string(identityTimeoutSeconds)
    MIN_TOKEN_LIFETIME_MINUTES: string(minTokenLifetimeMinutes)
    TOKEN_CACHE_SIZE: string(tokenCacheSize)
    GRANT_CACHE_SECONDS: string(grantCacheSeconds)
    FAILED_ATTEMPTS_PER_ADDRESS: string(failedAttemptsPerAddress)
    FAILED_ATTEMPTS_PER_GRANT: string(failedAttemptsPerGrant)
    FAILED_ATTEMPTS_WINDOW_SECONDS: string(failedAttemptsWindowSeconds)
    MAX_REFRESHES_PER_GRANT_PER_MINUTE: string(maxRefreshesPerGrantPerMinute)
    REFRESH_CONCURRENCY: string(refreshConcurrency)
    DEGRADED_AFTER_DAYS: string(degradedAfterDays)
    NOTIFY_WEBHOOK_URL: notifyWebhookUrl
    // A Key Vault reference, resolved by the platform with the app's identity, never the key itself.
    NOTIFY_WEBHOOK_SECRET: empty(notifyWebhookUrl) ? '' : '@Microsoft.KeyVault(VaultName=${keyVaultName};SecretName=${notifyWebhookSecretName})'
  }
}
