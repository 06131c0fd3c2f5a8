import { Duration, Stack, type RemovalPolicy } from 'aws-cdk-lib';
import { EventBus, Rule, type IEventBus } from 'aws-cdk-lib/aws-events';
import { PolicyStatement, ServicePrincipal, type IGrantable } from 'aws-cdk-lib/aws-iam';
import type { IKey } from 'aws-cdk-lib/aws-kms';
import { Queue, QueueEncryption } from 'aws-cdk-lib/aws-sqs';
import { Construct } from 'constructs';
import { CHANGE_EVENT_SOURCE } from '../../functions/domain/change-events';
import { CHANGE_EVENT_BUS } from '../../functions/shared/resources';

export interface ChangeEventsProps {
  /** An existing bus to publish on. @default a bus named `<stack name>-change-events` */
  readonly eventBusName?: string;
  /** Encrypts the tap queue and its dead-letter queue; its policy gains EventBridge's use of it for this bus's rules. */
  readonly encryptionKey: IKey;
  readonly removalPolicy: RemovalPolicy;
}

/**
 * Where the pipeline publishes its change events (`functions/domain/change-events.ts`), and a tap
 * that keeps a copy of each for `vital-pipeline events --stack` to read: a rule on the bus matching
 * the pipeline's `source`, delivering to an encrypted queue.
 *
 * The tap queue is read by people, not by a function: a message it keeps expires after 4 days, one
 * received 5 times without being deleted moves to the dead-letter queue, which also receives what
 * EventBridge could not deliver after its retries (a broken key or queue policy), so nothing the
 * rule matched is dropped unseen.
 */
export class ChangeEvents extends Construct {
  readonly bus: IEventBus;
  readonly queue: Queue;
  readonly deadLetterQueue: Queue;
  readonly tap: Rule;

  constructor(scope: Construct, id: string, props: ChangeEventsProps) {
    super(scope, id);
    const stack = Stack.of(this);
    // A readable name, so that rules and consumers in other stacks can name the bus.
    const busName = props.eventBusName ?? `${stack.stackName}-change-events`;
    this.bus = props.eventBusName ? EventBus.fromEventBusName(this, 'Bus', busName) : new EventBus(this, 'Bus', { eventBusName: busName });

    const encryption = {
      encryption: QueueEncryption.KMS,
      encryptionMasterKey: props.encryptionKey,
      enforceSSL: true,
      removalPolicy: props.removalPolicy,
    };
    this.deadLetterQueue = new Queue(this, 'DeadLetters', { ...encryption, retentionPeriod: Duration.days(14) });
    this.queue = new Queue(this, 'Queue', {
      ...encryption,
      retentionPeriod: Duration.days(4),
      deadLetterQueue: { queue: this.deadLetterQueue, maxReceiveCount: 5 },
    });

    this.tap = new Rule(this, 'Tap', {
      eventBus: this.bus,
      description: 'Copies the Vital webhook pipeline\'s change events to its tap queue',
      eventPattern: { source: [CHANGE_EVENT_SOURCE] },
    });
    // Not the SqsQueue target: for an encrypted queue it admits events.amazonaws.com without naming
    // the rule (at most the account, behind a feature flag) and grants it kms:Encrypt, ReEncrypt* and
    // GenerateDataKey* on the key. Here the queues admit this rule alone, and the key only what it needs.
    this.tap.addTarget({
      bind: () => ({ arn: this.queue.queueArn, deadLetterConfig: { arn: this.deadLetterQueue.queueArn } }),
    });
    for (const queue of [this.queue, this.deadLetterQueue]) {
      queue.addToResourcePolicy(
        new PolicyStatement({
          principals: [new ServicePrincipal('events.amazonaws.com')],
          actions: ['sqs:SendMessage'],
          resources: [queue.queueArn],
          conditions: { ArnEquals: { 'aws:SourceArn': this.tap.ruleArn } },
        }),
      );
    }
    // EventBridge encrypts what it sends to the queues with their key. The key policy cannot name the
    // rule (the rule names the queue, which names the key: a cycle), so it names the rules of this bus
    // in this account; the queue policies above admit the one rule.
    const rulesOfBus = busName === 'default' ? 'rule/*' : `rule/${busName}/*`;
    props.encryptionKey.addToResourcePolicy(
      new PolicyStatement({
        principals: [new ServicePrincipal('events.amazonaws.com')],
        actions: ['kms:Decrypt', 'kms:GenerateDataKey'],
        resources: ['*'],
        conditions: {
          StringEquals: { 'aws:SourceAccount': stack.account },
          ArnLike: { 'aws:SourceArn': `arn:${stack.partition}:events:${stack.region}:${stack.account}:${rulesOfBus}` },
        },
      }),
    );
  }

  /** The environment a publishing function needs. */
  environment(): Record<string, string> {
    return { [CHANGE_EVENT_BUS.envVar]: this.bus.eventBusName };
  }

  /** Lets `grantee` publish on the bus, and do nothing else with it. */
  grantPublish(grantee: IGrantable): void {
    this.bus.grantPutEventsTo(grantee);
  }
}
