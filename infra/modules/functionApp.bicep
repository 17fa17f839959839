// The Function App on the Flex Consumption plan. Its app settings are set by appSettings.bicep
// once the app registration, which needs this app's host name, exists.

@description('Azure region of the plan and the app.')
param location string

@description('Tags of the plan.')
param planTags object

@description('Tags of the app, including the azd-service-name tag that azd deploys to.')
param siteTags object

@description('Name of the Function App; its default host name is derived from it.')
param name string

@description('Name of the Flex Consumption plan.')
param planName string

@description('Resource ID of the user-assigned managed identity the app runs as.')
param identityId string

@description('URL of the blob container that holds the app package.')
param deploymentContainerUrl string

@description('Maximum number of instances the app scales out to.')
param maximumInstanceCount int

@description('Memory of each instance, in MB.')
param instanceMemoryMB int

// Flex Consumption: Linux, scale to zero, billed per execution and memory.
resource plan 'Microsoft.Web/serverfarms@2024-04-01' = {
  name: planName
  location: location
  tags: planTags
  kind: 'functionapp'
  sku: {
    name: 'FC1'
    tier: 'FlexConsumption'
  }
  properties: {
    reserved: true
  }
}

resource functionApp 'Microsoft.Web/sites@2024-04-01' = {
  name: name
  location: location
  tags: siteTags
  kind: 'functionapp,linux'
  identity: {
    type: 'UserAssigned'
    userAssignedIdentities: {
      '${identityId}': {}
    }
  }
  properties: {
    serverFarmId: plan.id
    httpsOnly: true
    // Key Vault references in app settings resolve with this identity.
    keyVaultReferenceIdentity: identityId
    siteConfig: {
      minTlsVersion: '1.2'
      ftpsState: 'Disabled'
    }
    functionAppConfig: {
      deployment: {
        storage: {
          type: 'blobContainer'
          value: deploymentContainerUrl
          authentication: {
            type: 'UserAssignedIdentity'
            userAssignedIdentityResourceId: identityId
          }
        }
      }
      scaleAndConcurrency: {
        maximumInstanceCount: maximumInstanceCount
        instanceMemoryMB: instanceMemoryMB
      }
      runtime: {
        name: 'node'
        version: '22'
      }
    }
  }
}

output name string = functionApp.name
output defaultHostName string = functionApp.properties.defaultHostName
