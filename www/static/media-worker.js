// The worker that protects and opens call media (www/static/frame-layer.js,
// crates/web/src/call/media.rs): WebRTC's Encoded Transform hands it every encoded audio and
// video frame; it protects outgoing frames and opens incoming ones with SFrame under the
// call's secret. A frame that does not authenticate is dropped and counted. The page posts
// the module it already compiled, then the call's key ({ key, caller }), and { end: true }
// when the call ends.
import { FrameLayer } from './frame-layer.js';

let layer = null;

self.addEventListener('message', async (event) => {
  const data = event.data;
  if (data.glue) {
    try {
      const b = await import(data.glue);
      await b.default({ module_or_path: data.module });
      layer = new FrameLayer(b);
      self.postMessage({ ready: true });
    } catch (error) {
      self.postMessage({ failed: String(error) });
    }
  } else if (data.key && layer) {
    await layer.key(new Uint8Array(data.key), !!data.caller);
  } else if (data.end && layer) {
    layer.end();
  } else if (data.stats) {
    self.postMessage({ counts: layer ? layer.counts() : [0, 0, 0, 0], aes: layer ? layer.videoAes() : '' });
  }
});

// One transform per sender and receiver; `options` says which ({ side, kind }). Frames are
// handled one at a time, in order.
self.onrtctransform = (event) => {
  const transformer = event.transformer;
  const { side, kind } = transformer.options;
  const video = kind === 'video';
  const send = side === 'send';
  transformer.readable
    .pipeThrough(new TransformStream({
      async transform(frame, controller) {
        if (!layer) return;
        const keyFrame = video && frame.type === 'key';
        const out = send
          ? await layer.protect(video, keyFrame, frame.data)
          : await layer.open(video, keyFrame, frame.data);
        if (out === null) return;
        frame.data = out;
        controller.enqueue(frame);
      },
    }))
    .pipeTo(transformer.writable)
    .catch(() => {});
};
