// node-redis's client-side cache (RESP3, CLIENT TRACKING) against one server: prints, as JSON,
// what a cached client reads and how its cache counts hits and misses while another client
// writes.  tests/test_node_redis_cache.py runs it against dumpling and against Redis.
"use strict";
const { createClient, BasicClientSideCache } = require("redis");

async function main() {
  const port = Number(process.argv[2]);
  const socket = { host: "127.0.0.1", port };
  const cache = new BasicClientSideCache({ ttl: 0, maxEntries: 0 });
  const cached = createClient({ socket, RESP: 3, clientSideCache: cache });
  const writer = createClient({ socket });
  await cached.connect();
  await writer.connect();
  const steps = [];
  const step = async (name, read) => {
    const value = await read();
    const stats = cache.stats();
    steps.push({ name, value, hits: stats.hitCount, misses: stats.missCount, size: cache.size() });
  };
  await writer.set("csc:k", "v1");
  await writer.hSet("csc:h", { f: "1" });
  await step("first GET: a miss", () => cached.get("csc:k"));
  await step("second GET: a hit", () => cached.get("csc:k"));
  await step("HGETALL: a miss", () => cached.hGetAll("csc:h"));
  await step("HGETALL again: a hit", () => cached.hGetAll("csc:h"));
  await step("MGET: a miss", () => cached.mGet(["csc:k", "csc:other"]));
  // Invalidation is asynchronous: the server pushes it on the cached client's connection, which
  // node reads when it gets to it.  A PING on that connection comes back after the push.
  const settle = () => cached.ping();
  await writer.set("csc:k", "v2"); // the server invalidates csc:k in the cached client
  await settle();
  await step("GET after another client's SET", () => cached.get("csc:k"));
  await step("MGET after that SET", () => cached.mGet(["csc:k", "csc:other"]));
  await step("HGETALL still cached", () => cached.hGetAll("csc:h"));
  await cached.set("csc:k", "v3"); // its own write invalidates too (no NOLOOP)
  await settle();
  await step("GET after its own SET", () => cached.get("csc:k"));
  await writer.expire("csc:h", 100);
  await settle();
  await step("HGETALL after EXPIRE", () => cached.hGetAll("csc:h"));
  await writer.flushAll(); // a null invalidation empties the whole cache
  await settle();
  await step("GET after FLUSHALL", () => cached.get("csc:k"));
  await step("HGETALL after FLUSHALL", () => cached.hGetAll("csc:h"));
  const tracking = await cached.sendCommand(["CLIENT", "TRACKINGINFO"]);
  console.log(JSON.stringify({ steps, tracking }));
  await cached.quit();
  await writer.quit();
}

main().catch((err) => {
  console.error(err && err.stack ? err.stack : String(err));
  process.exit(1);
});
