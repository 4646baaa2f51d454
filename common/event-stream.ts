/** Reading a server-sent event stream (`text/event-stream`) whose `data:` lines are JSON. */

export interface StreamEvent {
  id: string | null;
  type: string;
  data: unknown;
}

/** Yields each complete event of the stream, in order; comments and keep-alives are skipped. */
export async function* parseEventStream(body: AsyncIterable<Uint8Array>): AsyncGenerator<StreamEvent> {
  const decoder = new TextDecoder();
  let buffer = '';
  let event: { id: string | null; type: string; data: string[] } = { id: null, type: 'message', data: [] };
  for await (const chunk of body) {
    buffer += decoder.decode(chunk, { stream: true });
    let newline: number;
    while ((newline = buffer.indexOf('\n')) >= 0) {
      const line = buffer.slice(0, newline).replace(/\r$/, '');
      buffer = buffer.slice(newline + 1);
      if (line === '') {
        if (event.data.length > 0) yield { id: event.id, type: event.type, data: JSON.parse(event.data.join('\n')) };
        event = { id: null, type: 'message', data: [] };
      } else if (line.startsWith('id:')) event.id = line.slice(3).trim();
      else if (line.startsWith('event:')) event.type = line.slice(6).trim();
      else if (line.startsWith('data:')) event.data.push(line.slice(5).replace(/^ /, ''));
    }
  }
}
