export { RedisBroker, type RedisBrokerOptions, type RedisDelivery } from "./redis-broker.js";
export { RedisConsumer } from "./redis-consumer.js";
export { parseRedisUrl, type ParsedRedisUrl } from "./connection-url.js";
export { LUA_MAX_STACK_VARIABLE } from "./scripts.js";
export type { RespClientOptions } from "./resp/options.js";
