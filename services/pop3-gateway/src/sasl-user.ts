/**
 * The user name in a SASL exchange, for the scan envelope only (authentication itself is
 * upstream's business): PLAIN (RFC 4616) `authzid NUL authcid NUL password`, LOGIN the first
 * response. Empty when unknown.
 */
export function saslUser(mechanism: string, responses: readonly string[]): string {
  const first = responses[0];
  if (first === undefined || first === '=' || first === '*') return '';
  const decoded = Buffer.from(first, 'base64').toString('utf8');
  switch (mechanism.toUpperCase()) {
    case 'PLAIN': {
      const [authzid = '', authcid = ''] = decoded.split('\0');
      return (authzid || authcid).slice(0, 256);
    }
    case 'LOGIN':
      return decoded.slice(0, 256);
    default:
      return '';
  }
}
