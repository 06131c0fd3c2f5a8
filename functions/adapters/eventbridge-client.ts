import { EventBridgeClient } from '@aws-sdk/client-eventbridge';

/**
 * The command the change-event publisher sends, from here rather than imported by it: it loads this
 * module on first use, which a bundle turns into a `require` of the SDK on first use. (Its own
 * `import('@aws-sdk/...')` would stay an ES import, which does not look on NODE_PATH, where Lambda's
 * runtime keeps the SDK.)
 */
export { PutEventsCommand } from '@aws-sdk/client-eventbridge';

/**
 * One attempt per call: the change-event publisher retries failed calls and failed entries itself,
 * under one bound (`change-event-publisher.ts`); SDK retries under it would multiply the attempts.
 * Each attempt is bounded too (the SDK sets no timeout): a hung connection fails as a TimeoutError,
 * which the publisher retries, instead of using up the worker's 30 s.
 */
export const EVENTBRIDGE_CLIENT_SETTINGS = { maxAttempts: 1, requestHandler: { connectionTimeout: 1_000, requestTimeout: 3_000, throwOnRequestTimeout: true } } as const;

let client: EventBridgeClient | undefined;

/** The container's EventBridge client; its endpoint honours `AWS_ENDPOINT_URL_EVENTBRIDGE` / `AWS_ENDPOINT_URL`. */
export const eventBridgeClient = (): EventBridgeClient => (client ??= new EventBridgeClient(EVENTBRIDGE_CLIENT_SETTINGS));
