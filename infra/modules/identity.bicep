// The user-assigned managed identity of the Function App. It reaches Storage, Key Vault and
// Application Insights, and the app registration trusts it as its credential.

@description('Azure region of the identity.')
param location string

@description('Tags of the identity.')
param tags object

@description('Name of the identity.')
param name string

resource identity 'Microsoft.ManagedIdentity/userAssignedIdentities@2023-01-31' = {
  name: name
  location: location
  tags: tags
}

output id string = identity.id
output name string = identity.name
output clientId string = identity.properties.clientId
output principalId string = identity.properties.principalId
