"""A2World-policy: the joint video-action denoiser built on A2World's video path (paper §3.3).

One module per concern: `config` (PolicyConfig), `model` (A2WorldPolicy and the decisions the paper
leaves open), `blocks` (the video-action block), `positions` (RoPE positions of action tokens),
`diffusion` (joint denoiser, guidance, sampler), `train` (objective and step), `init` (weights from
A2World), `checkpoint` (our directory format), `onnx` (export and onnxruntime runner), `engine`
(observation in, action chunk out) and `cli` (`a2w policy …`, `a2w model init-policy`).
"""
