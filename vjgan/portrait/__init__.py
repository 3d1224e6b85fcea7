"""The living portrait: a photo (or painting) projected into a model's W+, and directions from examples.

    images      read a picture, or say in one line why not
    align       find the face and crop it the way FFHQ was made (OpenCV's bundled Haar cascades)
    losses      what "looks the same" means: pixels and structure, or a network's features
    vgg16       a user-supplied VGG16 / LPIPS file, read as plain tensors
    project     the optimisation (StyleGAN2's projector): a cancellable job with progress
    direction   a named latent direction from two projected pictures
    cli         `vjgan project` and `vjgan direction`

Depends on vjgan.gan, vjgan.train (the discriminator) and vjgan.motion (the keyframe file
format); the live show and the command line use it, never the other way round.
"""
