/**
 * Composition of messages: pipelines (one after another, results passed
 * along) and groups (in parallel, with optional completion callbacks).
 */

export { Group, group, type GroupChild, type GroupRunOptions, type GroupWaitOptions } from "./group.js";
export { Pipeline, pipeline, type CompositionOptions, type CompositionRunOptions, type PipelineChild } from "./pipeline.js";
export type { CompositionResultOptions } from "./results.js";
