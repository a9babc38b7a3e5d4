// The reporter's event stream of one poll, read for its running total: the
// benchmarks time cast -> tally by waiting for the total a vote must reach.
//
// watchTotal(url, onTotal, signal) opens the stream (throws if it does not
// answer 200) and resolves to { done }, a promise that settles when the
// stream ends or `signal` aborts it (wrapped, so awaiting watchTotal does not
// wait for the stream's end). onTotal(total) is called for every event whose
// data carries a numeric `total`; other events and lines are skipped.

export async function watchTotal(url, onTotal, signal) {
  const res = await fetch(url, { headers: { accept: 'text/event-stream' }, signal });
  if (res.status !== 200) throw new Error(`SSE answered ${res.status}`);
  const done = (async () => {
    const dec = new TextDecoder();
    let buf = '';
    try {
      for await (const chunk of res.body) {
        buf += dec.decode(chunk, { stream: true });
        let nl;
        while ((nl = buf.indexOf('\n')) >= 0) {
          const line = buf.slice(0, nl);
          buf = buf.slice(nl + 1);
          if (!line.startsWith('data:')) continue;
          try {
            const t = JSON.parse(line.slice(5)).total;
            if (typeof t === 'number') onTotal(t);
          } catch { /* not a tally */ }
        }
      }
    } catch { /* aborted */ }
  })();
  return { done };
}
