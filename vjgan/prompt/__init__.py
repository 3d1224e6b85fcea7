"""Words into pictures: CLIP finds the latent whose picture matches a text (`vjgan prompt`).

CLIP (open_clip, the optional extra `vjgan[prompt]`) scores how well a generated picture
matches a text; the search looks for the W+ latent with the best score and keeps it as a
keyframe file (`vjgan.motion.keyframe_files`). Modules, each with one job:

    clip      load a local CLIP checkpoint safely (weights only, no network) and score pictures
    crops     augmented crops of a picture, so a score rewards the picture, not a few pixels
    settings  how thoroughly a search looks (SearchSettings)
    search    the search itself, in small steps with progress and cancellation
    cache     found keyframes kept per model, CLIP and prompt, so a set list replays instantly
    progress  the search's progress bar
    cli       `vjgan prompt` arguments (add_prompt_parser)

Depends on vjgan.gan and vjgan.motion; vjgan.render (stories) and the live show use it.
"""
