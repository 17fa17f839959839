// The roles of the Function App's managed identity: each role on the one resource that needs it,
// all from one list.

@description('Principal (object) ID of the user-assigned managed identity that receives the roles.')
param principalId string

@description('Name of the Key Vault that keeps the refresh tokens.')
param keyVaultName string

@description('Name of the Storage account of the grant tables and the Functions host.')
param storageAccountName string

@description('Name of the Application Insights component the Functions host sends telemetry to.')
param applicationInsightsName string

resource keyVault 'Microsoft.KeyVault/vaults@2023-07-01' existing = {
  name: keyVaultName
}

resource storage 'Microsoft.Storage/storageAccounts@2023-05-01' existing = {
  name: storageAccountName
}

resource applicationInsights 'Microsoft.Insights/components@2020-02-02' existing = {
  name: applicationInsightsName
}

// Azure built-in roles, by role definition ID. Storage Queue Data Contributor is not granted: the
// app has HTTP and timer triggers only, and the Functions host uses queues for neither.
var assignments = [
  {
    // The broker writes each refresh token as a new secret version, reads it, and soft-deletes it
    // on revoke. The platform reads the webhook key through a Key Vault reference.
    roleDefinitionId: 'b86a8fe4-44ce-4948-aee5-eccb2c155cd7' // Key Vault Secrets Officer
    scope: keyVault.id
  }
  {
    // The broker's sign-in and grant tables, which it creates at start-up. The Functions host also
    // writes its diagnostic events to tables of this account.
    roleDefinitionId: '0a9a7e1f-b9d0-4cc4-a60d-0319b160aaa3' // Storage Table Data Contributor
    scope: storage.id
  }
  {
    // The Functions host keeps its keys and the timer's lock and schedule status in blobs and
    // creates their containers. Flex Consumption reads the app package from the deployment
    // container.
    roleDefinitionId: 'b7e6dc6d-f1e8-4753-8033-0f276bb0955b' // Storage Blob Data Owner
    scope: storage.id
  }
  {
    // Entra-authenticated telemetry ingestion, because the component has local authentication off.
    roleDefinitionId: '3913510d-42f4-4e42-8a64-420c390055eb' // Monitoring Metrics Publisher
    scope: applicationInsights.id
  }
]

// Bicep takes only a resource symbol as the scope of a role assignment, so assignments on several
// resources from one list go through a nested template, where the scope is a resource ID.
#disable-next-line no-deployments-resources
resource roleAssignment 'Microsoft.Resources/deployments@2022-09-01' = [
  for assignment in assignments: {
    name: 'role-${guid(assignment.scope, principalId, assignment.roleDefinitionId)}'
    properties: {
      mode: 'Incremental'
      expressionEvaluationOptions: {
        scope: 'inner'
      }
      template: loadJsonContent('roleAssignment.json')
      parameters: {
        scope: {
          value: assignment.scope
        }
        principalId: {
          value: principalId
        }
        roleDefinitionId: {
          value: assignment.roleDefinitionId
        }
      }
    }
  }
]
