// A lost WebGPU device (here `device.destroy()` in the middle of training) gives a
// clear message and switches the lab to the CPU; the page does not freeze, and Run
// then trains on the CPU.
import { test, assert, text, waitStatus, waitStage, fresh, result } from './lib.mjs';

export async function gpuLossTests({ page, base, mode, context }) {
  await test(`${mode}: a lost GPU device mid-run is named, the lab switches to the CPU, and Run trains there`, async () => {
    // Keep a handle on the device the app asks for, so the test can destroy it.
    await context.addInitScript(() => {
      if (!('GPUAdapter' in self)) return;
      const request = GPUAdapter.prototype.requestDevice;
      GPUAdapter.prototype.requestDevice = async function (...args) {
        const device = await request.apply(this, args);
        self.__replabDevices = (self.__replabDevices || []).concat([device]);
        return device;
      };
    });
    await fresh(page, `${base}/#/supervised?epochs=1&limit=128&batch_size=32&seed=7`);
    await page.waitForSelector('[data-testid="run"]:not([disabled])', { timeout: 120000 });
    await page.click('[data-testid="run"]');
    await waitStage(page, /train: epoch 1, step [2-9]/, 600000);
    const n = await page.evaluate(() => { for (const d of self.__replabDevices || []) d.destroy(); return (self.__replabDevices || []).length; });
    assert(n > 0, 'the app asked for no WebGPU device');
    const status = await waitStatus(page, ['error', 'done', 'cancelled'], 300000);
    assert(/GPU \(WebGPU device\) was lost or failed/.test(status) && /switched to the CPU/.test(status), `status: ${status}`);
    // The page is alive: the header names the CPU, and Run trains there.
    assert(/cpu/i.test(await text(page, 'backend')), `backend shown: ${await text(page, 'backend')}`);
    await page.click('[data-testid="run"]');
    assert(await waitStatus(page, ['done', 'error', 'cancelled'], 600000) === 'done', `run on the CPU: ${await text(page, 'status')}`);
    const r = await result(page);
    assert(r.probe.converged_test_b > 0.5, `no learning on the CPU after the loss: test B ${r.probe.converged_test_b}`);
    console.log(`       after the loss: ${status.slice(0, 160)}…`);
  });
}
