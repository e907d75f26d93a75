/**
 * The message a CLI worker process sends its parent to have a Redis
 * heartbeat kept (heartbeat-keeper.ts). It has a module of its own so that
 * the CLI's main process reads it without loading a Redis client.
 */

/** The variable a parent that keeps heartbeats sets for its children. */
export const HEARTBEAT_VIA_PARENT_VARIABLE = "MELODRAMATIQ_HEARTBEAT_VIA_PARENT";

/** A child's request to its parent; every member survives the IPC channel's JSON. */
export interface HeartbeatRequest {
  readonly type: "melodramatiq:heartbeat";
  readonly action: "start" | "stop";
  readonly brokerId: string;
  /** The heartbeats sorted set, `<namespace>:__heartbeats__`; only with "start". */
  readonly key?: string;
  /** Milliseconds between two refreshes; only with "start". */
  readonly interval?: number;
  /** Connection options, as the heartbeat thread would get them; only with "start". */
  readonly connection?: Record<string, unknown>;
}

/** Reports whether an IPC message from a child is a heartbeat request. */
export function isHeartbeatRequest(value: unknown): value is HeartbeatRequest {
  const request = value as Partial<HeartbeatRequest> | null;
  return typeof request === "object" && request !== null && request.type === "melodramatiq:heartbeat" && typeof request.brokerId === "string";
}
