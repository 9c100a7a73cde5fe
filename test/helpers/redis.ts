export { startRedis, type RedisServer as TestRedis } from "../../workers/src/lib/redisServer.ts";
