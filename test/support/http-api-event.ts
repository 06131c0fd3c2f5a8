import type { APIGatewayProxyEventV2 } from 'aws-lambda';
import { WEBHOOK_ROUTE } from '../../functions/shared/resources';

/** A webhook request as API Gateway's HTTP API (payload format 2.0) hands it to the verifier. */
export function webhookRequestEvent(headers: Record<string, string>, body: string, isBase64Encoded = false): APIGatewayProxyEventV2 {
  return {
    version: '2.0',
    routeKey: `${WEBHOOK_ROUTE.method} ${WEBHOOK_ROUTE.path}`,
    rawPath: WEBHOOK_ROUTE.path,
    rawQueryString: '',
    headers: { 'content-type': 'application/json', ...headers },
    requestContext: {} as APIGatewayProxyEventV2['requestContext'],
    body,
    isBase64Encoded,
  };
}
