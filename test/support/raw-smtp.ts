import { connect } from 'node:net';

/**
 * Writes each chunk after the previous reply arrived, exactly as given (no line-ending fixes: this
 * is how tests send the malformed input a real client library would refuse to produce).
 */
export async function rawSession(addr: { host: string; port: number }, chunks: string[], timeoutMs = 15_000): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = connect(addr);
    let transcript = '';
    let i = 0;
    let pending = '';
    const timer = setTimeout(() => {
      socket.destroy();
      reject(new Error(`raw SMTP session timed out; transcript so far:\n${transcript}`));
    }, timeoutMs);
    socket.on('data', (d) => {
      transcript += d.toString('latin1');
      pending += d.toString('latin1');
      // Send the next chunk once a complete final reply line (`ddd ` … CRLF) arrived.
      while (/^\d{3} [^\n]*\r\n/m.test(pending)) {
        pending = '';
        if (i < chunks.length) socket.write(chunks[i++]!);
      }
    });
    socket.on('close', () => {
      clearTimeout(timer);
      resolve(transcript);
    });
    socket.on('error', (err) => {
      clearTimeout(timer);
      reject(err);
    });
  });
}
