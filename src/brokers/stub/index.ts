export { StubBroker, type DeadLetter, type StubBrokerOptions } from "./stub-broker.js";
