export { RabbitmqBroker, type RabbitmqBrokerOptions } from "./rabbitmq-broker.js";
export { DEFAULT_DEAD_MESSAGE_TTL, DEAD_MESSAGE_TTL_VARIABLE } from "./declaration.js";
export { DEFAULT_URL } from "./url.js";
