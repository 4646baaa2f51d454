/**
 * The agent fetches the contents of its applications' files from the control service, by id
 * (`GET /v1/drover/agents/<uuid>/files/<id>`): only what an application in this node's view
 * refers to is answered, a secret decrypted (docs/DESIGN.md §22).
 */
import { ApiClient } from '#common/api-client.ts';
import type { TlsIdentity } from '#common/tls-client.ts';
import type { FileSource } from './app-files.ts';

export class HttpFileSource implements FileSource {
  private readonly client: ApiClient;

  constructor(
    controlUrl: string | readonly string[],
    private readonly nodeUuid: string,
    requestTimeoutMs = 10_000,
    /** The node's certificate, for an https control service (docs/DESIGN.md §23). */
    tls?: TlsIdentity,
  ) {
    this.client = new ApiClient({ baseUrl: controlUrl, timeoutMs: requestTimeoutMs, ...(tls ? { tls } : {}) });
  }

  async fetch(id: string): Promise<{ kind: 'file' | 'secret'; bytes: Buffer }> {
    const answer = await this.client.agentFile(this.nodeUuid, id);
    return { kind: answer.kind, bytes: Buffer.from(answer.content_base64, 'base64') };
  }
}
