import type { Duration, RemovalPolicy } from 'aws-cdk-lib';
import type { IKey } from 'aws-cdk-lib/aws-kms';
import { Architecture, LoggingFormat, Runtime, Tracing } from 'aws-cdk-lib/aws-lambda';
import { NodejsFunction, OutputFormat } from 'aws-cdk-lib/aws-lambda-nodejs';
import { LogGroup, RetentionDays } from 'aws-cdk-lib/aws-logs';
import { Role, ServicePrincipal } from 'aws-cdk-lib/aws-iam';
import { Construct } from 'constructs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { SERVICE_NAME } from '../../functions/shared/service';
import { acceptFunctionFindings } from '../compliance';

const projectRoot = path.join(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
const functionsDir = path.join(projectRoot, 'functions');

export interface PipelineFunctionProps {
  /** The handler file, relative to `functions/` (e.g. `verifier.ts`); it exports `handler`. */
  readonly entry: string;
  readonly description: string;
  readonly timeout: Duration;
  readonly memorySize?: number;
  readonly environment?: Record<string, string>;
  /** Encrypts the function's log group. */
  readonly encryptionKey: IKey;
  readonly logRetention: RetentionDays;
  /** X-Ray active tracing. */
  readonly tracing: boolean;
  /**
   * With `tracing`, a subsegment for each AWS SDK call too (functions/shared/tracing.ts); it loads
   * the X-Ray SDK into the function's cold start. @default false
   */
  readonly traceSdkCalls?: boolean;
  /** What happens to the function's log group when the stack is deleted. */
  readonly removalPolicy: RemovalPolicy;
}

/**
 * A Lambda function as every handler of the pipeline runs: Node.js 24 on arm64, bundled by esbuild
 * (minified, tree-shaken, source maps), structured JSON logs in its own encrypted log group, and
 * X-Ray tracing unless the deployment turns it off. The AWS SDK v3 is left to the runtime, which
 * ships it: bundling it would add hundreds of kilobytes to every cold start for no gain in behaviour.
 *
 * Its role may write only to its own log group. (The usual AWSLambdaBasicExecutionRole would let
 * it create and write any log group of the account: `logs:*` actions on `Resource: *`.)
 */
export class PipelineFunction extends NodejsFunction {
  constructor(scope: Construct, id: string, props: PipelineFunctionProps) {
    const logGroup = new LogGroup(scope, `${id}Logs`, {
      retention: props.logRetention,
      encryptionKey: props.encryptionKey,
      removalPolicy: props.removalPolicy,
    });
    const role = new Role(scope, `${id}ServiceRole`, {
      assumedBy: new ServicePrincipal('lambda.amazonaws.com'),
      description: `Runs the ${id} function of the Vital webhook pipeline`,
    });
    logGroup.grantWrite(role);
    super(scope, id, {
      role,
      entry: path.join(functionsDir, props.entry),
      projectRoot,
      depsLockFilePath: path.join(projectRoot, 'package-lock.json'),
      handler: 'handler',
      description: props.description,
      runtime: Runtime.NODEJS_24_X,
      architecture: Architecture.ARM_64,
      memorySize: props.memorySize ?? 512,
      timeout: props.timeout,
      tracing: props.tracing ? Tracing.ACTIVE : Tracing.DISABLED,
      logGroup,
      loggingFormat: LoggingFormat.JSON,
      environment: {
        NODE_OPTIONS: '--enable-source-maps',
        POWERTOOLS_SERVICE_NAME: SERVICE_NAME,
        POWERTOOLS_TRACE_ENABLED: String(props.tracing && (props.traceSdkCalls ?? false)),
        ...props.environment,
      },
      bundling: {
        minify: true,
        // Error class names stay readable in logs and failure notes (functions/domain/named-error.ts).
        keepNames: true,
        sourceMap: true,
        target: 'node24',
        format: OutputFormat.CJS,
        externalModules: ['@aws-sdk/*'],
      },
    });
    acceptFunctionFindings(this, role, { tracing: props.tracing });
  }
}
