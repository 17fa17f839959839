import { setTimeout as sleep } from "node:timers/promises";
import { describe, expect, it } from "vitest";
import { createSlots } from "../../shared/refresher.js";

describe("token slots", () => {
  it("never run more tasks at once than the limit", async () => {
    const slots = createSlots(3);
    let running = 0;
    let maxRunning = 0;

    const results = await Promise.all(
      Array.from({ length: 20 }, (_, index) =>
        slots.run(async () => {
          running += 1;
          maxRunning = Math.max(maxRunning, running);
          await sleep(index % 4);
          running -= 1;
          return index;
        }),
      ),
    );

    expect(maxRunning).toBe(3);
    expect(results).toEqual(Array.from({ length: 20 }, (_, index) => index));
  });

  it("start waiting tasks in the order they asked", async () => {
    const slots = createSlots(1);
    const started: number[] = [];
    await Promise.all(
      [0, 1, 2, 3].map((index) =>
        slots.run(async () => {
          started.push(index);
          await sleep(1);
        }),
      ),
    );
    expect(started).toEqual([0, 1, 2, 3]);
  });

  it("free the slot of a task that failed", async () => {
    const slots = createSlots(1);
    await expect(
      slots.run(() => Promise.reject(new Error("call failed"))),
    ).rejects.toThrow("call failed");
    await expect(slots.run(async () => "next")).resolves.toBe("next");
  });
});
