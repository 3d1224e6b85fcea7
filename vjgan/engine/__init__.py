"""The engine both the live show and `vjgan render` play: one model on one device, one preset's motion.

    device = pick_device(options.device)                 # device.py: CUDA, then MPS, then the CPU
    scene = build_scene(model, preset, device)           # scene.py: load, latent space, keyframes, synth
    motion = scene.driver.step(t, features, onsets)      # smoothing of the knobs, then the latent engine
    pixels = scene.synth.frame(motion.ws, motion.noise_gains, resolution)     # synth.py: live frames
    batch = scene.synth.frames(ws_batch, gains_batch)                          # render's batches

Live and render call the same `build_scene`, so a preset looks the same on the projector and in
the rendered video, and a change to how a scene is assembled is made once.
"""
