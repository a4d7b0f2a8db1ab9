"""LingBot-World-Fast (Robbyant, 2026) hosted as a WorldBridge world: our own implementation of the published
architecture that loads the released checkpoint files. See docs/lingbot.md.

    config.py   the checkpoint layout and the Fast DiT's config.json
    loader.py   safetensors index + shards and .pth files, checked name by name against the model
    dit.py      the Wan-style block-causal DiT with camera/action control and its chunk KV cache
    quant.py    int8 / fp8 weight-only quantisation of the DiT blocks' linear layers
    vae.py      the Wan2.1 causal 3D VAE with per-chunk streaming caches
    text.py     the umT5-XXL encoder, its tokenizer and a per-prompt cache
    control.py  poses, intrinsics and WASD -> the per-pixel control channels of one chunk
    world.py    LingBotWorld: the World the daemon serves, one chunk of frames at a time
    tiny.py     tiny random checkpoints in the released layout (tests, demos without the real weights)
"""
