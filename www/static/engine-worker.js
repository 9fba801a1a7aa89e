// The worker that runs this browser's device engine (crates/web/src/device/worker.rs).
// The page sends one message: the address of the app's JavaScript glue, the WebAssembly
// module the page already compiled (so nothing is downloaded or compiled twice), and what
// the engine needs to start. Commands then travel over the device's BroadcastChannel.
self.addEventListener('message', async (event) => {
  const { glue, module, start, key } = event.data;
  try {
    const bindings = await import(glue);
    await bindings.default({ module_or_path: module });
    bindings.tandem_engine_worker(start, key ?? null);
  } catch (error) {
    self.postMessage({ kind: 'failed', locked: false, error: String(error) });
  }
}, { once: true });
