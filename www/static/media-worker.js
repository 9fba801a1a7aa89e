// The worker that protects and opens call media (crates/web/src/call/media.rs): WebRTC's
// Encoded Transform hands it every encoded audio and video frame; the app's WebAssembly
// protects outgoing frames and opens incoming ones with SFrame under the call's secret.
// A frame that does not authenticate is dropped and counted. The page posts the module it
// already compiled, then the call's key ({ key, caller }), and { end: true } when the call ends.
let bindings = null;
const counts = () => (bindings ? Array.from(bindings.tandem_media_counts()) : [0, 0, 0, 0]);

self.addEventListener('message', async (event) => {
  const data = event.data;
  if (data.glue) {
    try {
      const b = await import(data.glue);
      await b.default({ module_or_path: data.module });
      bindings = b;
      self.postMessage({ ready: true });
    } catch (error) {
      self.postMessage({ failed: String(error) });
    }
  } else if (data.key && bindings) {
    bindings.tandem_media_key(new Uint8Array(data.key), !!data.caller);
  } else if (data.end && bindings) {
    bindings.tandem_media_end();
  } else if (data.stats) {
    self.postMessage({ counts: counts() });
  }
});

// One transform per sender and receiver; `options` says which ({ side, kind }).
self.onrtctransform = (event) => {
  const transformer = event.transformer;
  const { side, kind } = transformer.options;
  const video = kind === 'video';
  const send = side === 'send';
  transformer.readable
    .pipeThrough(new TransformStream({
      transform(frame, controller) {
        if (!bindings) return;
        const keyFrame = video && frame.type === 'key';
        const input = new Uint8Array(frame.data);
        const out = send
          ? bindings.tandem_media_protect(video, keyFrame, input)
          : bindings.tandem_media_unprotect(video, keyFrame, input);
        if (out === undefined || out === null) return;
        frame.data = out.buffer;
        controller.enqueue(frame);
      },
    }))
    .pipeTo(transformer.writable)
    .catch(() => {});
};
