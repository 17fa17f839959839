// Key Vault of the refresh tokens, one secret per grant. Access is by Azure RBAC only. Soft delete
// and purge protection keep a deleted token recoverable for the retention period.

@description('Azure region of the vault.')
param location string

@description('Tags of the vault.')
param tags object

@description('Name of the vault: 3 to 24 letters, digits and dashes, unique in Azure.')
param name string

@description('Days a deleted secret or the deleted vault is kept (7 to 90); fixed once the vault exists.')
param softDeleteRetentionInDays int

resource keyVault 'Microsoft.KeyVault/vaults@2023-07-01' = {
  name: name
  location: location
  tags: tags
  properties: {
    tenantId: tenant().tenantId
    sku: {
      family: 'A'
      name: 'standard'
    }
    enableRbacAuthorization: true
    enableSoftDelete: true
    softDeleteRetentionInDays: softDeleteRetentionInDays
    enablePurgeProtection: true
    publicNetworkAccess: 'Enabled'
    networkAcls: {
      bypass: 'AzureServices'
      defaultAction: 'Allow'
    }
  }
}

output name string = keyVault.name
output vaultUri string = keyVault.properties.vaultUri
