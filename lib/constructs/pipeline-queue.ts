import { Duration, type RemovalPolicy } from 'aws-cdk-lib';
import type { IKey } from 'aws-cdk-lib/aws-kms';
import { Queue, QueueEncryption } from 'aws-cdk-lib/aws-sqs';
import { Construct } from 'constructs';
import type { QueueDefinition } from '../../functions/shared/resources';

/** A queue of the pipeline and its dead-letter queue, both KMS-encrypted and TLS-only, from its shared definition. */
export class PipelineQueue extends Construct {
  readonly queue: Queue;
  readonly deadLetterQueue: Queue;

  constructor(scope: Construct, id: string, props: { definition: QueueDefinition; encryptionKey: IKey; removalPolicy: RemovalPolicy }) {
    super(scope, id);
    const encryption = {
      encryption: QueueEncryption.KMS,
      encryptionMasterKey: props.encryptionKey,
      enforceSSL: true,
      removalPolicy: props.removalPolicy,
    };
    const retentionPeriod = Duration.seconds(props.definition.messageRetentionSeconds);
    this.deadLetterQueue = new Queue(this, 'DeadLetters', { ...encryption, retentionPeriod });
    this.queue = new Queue(this, 'Queue', {
      ...encryption,
      visibilityTimeout: Duration.seconds(props.definition.visibilityTimeoutSeconds),
      retentionPeriod,
      deadLetterQueue: { queue: this.deadLetterQueue, maxReceiveCount: props.definition.maxReceiveCount },
    });
  }
}
