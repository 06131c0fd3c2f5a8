import type { Context } from 'aws-lambda';
import { randomUUID } from 'node:crypto';
import { LOCAL_AWS } from './stand-ins';

/**
 * What Lambda itself contributes to an invocation, reproduced for the local pipeline: a context
 * object with the deadline of the function's timeout, and the timeout itself, enforced. Handlers
 * (and Powertools, which reads `awsRequestId` and `getRemainingTimeInMillis`) see what they would
 * see in AWS.
 */

/** The account id fauxqs and the local ARNs use. */
export const LOCAL_ACCOUNT_ID = '000000000000';

/** A Lambda function as the local pipeline runs it. */
export interface LocalFunction<Event, Result> {
  readonly name: string;
  readonly timeoutSeconds: number;
  readonly handler: (event: Event, context: Context) => Promise<Result>;
}

/** The invocation ran past the function's timeout; in AWS, Lambda would have stopped it. */
export class FunctionTimeoutError extends Error {
  constructor(functionName: string, timeoutSeconds: number) {
    super(`${functionName} timed out after ${timeoutSeconds} s`);
  }
}

const unsupported = (): never => {
  throw new Error('Callback-style completion is not supported; return a promise');
};

function contextFor(fn: LocalFunction<unknown, unknown>, deadline: number): Context {
  return {
    callbackWaitsForEmptyEventLoop: true,
    functionName: fn.name,
    functionVersion: '$LATEST',
    invokedFunctionArn: `arn:aws:lambda:${LOCAL_AWS.region}:${LOCAL_ACCOUNT_ID}:function:${fn.name}`,
    memoryLimitInMB: '1024',
    awsRequestId: randomUUID(),
    logGroupName: `/aws/lambda/${fn.name}`,
    logStreamName: 'local',
    getRemainingTimeInMillis: () => Math.max(0, deadline - Date.now()),
    done: unsupported,
    fail: unsupported,
    succeed: unsupported,
  };
}

/**
 * Invokes `fn` as Lambda would: with a fresh context, failing with `FunctionTimeoutError` once the
 * timeout has passed. (The handler's promise cannot be stopped, unlike a Lambda sandbox; its late
 * result is ignored.)
 */
export async function invokeLocally<Event, Result>(fn: LocalFunction<Event, Result>, event: Event): Promise<Result> {
  const timeoutMs = fn.timeoutSeconds * 1000;
  const context = contextFor(fn as LocalFunction<unknown, unknown>, Date.now() + timeoutMs);
  let timer: NodeJS.Timeout | undefined;
  const timedOut = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new FunctionTimeoutError(fn.name, fn.timeoutSeconds)), timeoutMs);
  });
  try {
    return await Promise.race([fn.handler(event, context), timedOut]);
  } finally {
    clearTimeout(timer);
  }
}
