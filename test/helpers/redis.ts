export { startRedis, type RedisServer as TestRedis } from "../../workers/src/plane/redisServer.ts";
