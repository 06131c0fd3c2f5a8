import { ConditionalCheckFailedException } from '@aws-sdk/client-dynamodb';

/**
 * Whether a DynamoDB write failed on its condition (the outcome every conditional write of the
 * stores expects and handles), as opposed to any other error. By name as well as class: a client
 * from another copy of the SDK (the Lambda runtime's, a bundle's) throws its own class.
 */
export function isConditionFailure(error: unknown): error is ConditionalCheckFailedException {
  return error instanceof ConditionalCheckFailedException || (error as Error | undefined)?.name === 'ConditionalCheckFailedException';
}
