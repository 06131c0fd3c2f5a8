import { frontOver, startDynamoDbLocal, type RunningStandIn } from '../../local/stand-ins';

/** Names the DynamoDB Local that `npm test` starts once for all its files (global-setup.ts). */
export const SHARED_DYNAMODB_LOCAL_VARIABLE = 'TEST_SHARED_DYNAMODB_LOCAL';

/**
 * DynamoDB Local for a test file: a front of its own (its own IAM enforcement) over the suite's
 * shared JVM, or a JVM of its own when the file runs without the global setup. Files share the
 * database, so each names its tables with `uniquePrefix`.
 */
export function startTestDynamoDb(): Promise<RunningStandIn> {
  const shared = process.env[SHARED_DYNAMODB_LOCAL_VARIABLE];
  return shared ? frontOver(shared) : startDynamoDbLocal();
}

/** A table-name prefix no other test process uses: `name`, this process's id, and a dash. */
export const uniquePrefix = (name: string): string => `${name}${process.pid}-`;
