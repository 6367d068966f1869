// The presets live with the relay (relay/warmup/presets.ts): the relay enforces them and the
// operator shows them, from one definition.
export { WARMUP_PRESET_NAMES, WARMUP_PRESETS, warmupSteps, type WarmupPresetName, type WarmupStep } from '../../relay/warmup/presets.ts';
