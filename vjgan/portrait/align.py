"""Find a face and crop it the way FFHQ was made, so a face model sees what it was trained on.

Detection uses the Haar cascades that ship inside OpenCV's wheel (opencv-python-headless 4.x;
nothing is downloaded): the frontal-face cascade finds the face, the eye cascade the eyes in
its upper part, the smile cascade the mouth in its lower part. A mouth the cascade misses is
placed below the eye line at the eye distance (the usual adult proportion). A face tilted too far
for the upright detectors is looked for again in copies turned by ±20° and ±40°.
docs/portrait.md says why this detector and how well it does.

FFHQ's crop (Karras et al. 2019, the FFHQ dataset's alignment): with e = the eyes' midpoint,
d_ee = right eye − left eye, d_em = mouth − e, the crop is the square centred at e + 0.1·d_em,
turned so that d_ee − rot90(d_em) points along its top edge (the eye line level), with a half
side of max(2·|d_ee|, 1.8·|d_em|). Where it leaves the picture, the picture is mirrored outwards
and faded into a blurred copy and its median colour, so the model sees no hard edge.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from PIL import Image
from scipy.ndimage import gaussian_filter

from ..errors import UserError

Point = tuple[float, float]

# Where the Haar face box usually has the eyes and mouth (fractions of the box), for a face whose
# eyes the eye cascade misses: measured on skimage's astronaut portrait.
BOX_LEFT_EYE = (0.27, 0.37)
BOX_RIGHT_EYE = (0.73, 0.37)
MOUTH_BELOW_EYES = 1.0  # eye line to mouth, in eye distances, when the smile cascade finds none
TURNS = (0.0, -20.0, 20.0, -40.0, 40.0)


class NoFaceError(UserError):
    """No face in the picture (the message names the file)."""


@dataclass(frozen=True)
class FaceLandmarks:
    left_eye: Point  # the eye on the picture's left
    right_eye: Point
    mouth: Point  # the middle of the mouth
    box: tuple[float, float, float, float]  # the detector's face box (x, y, w, h), in the upright frame
    eyes_found: bool  # False: placed from the face box
    mouth_found: bool  # False: placed below the eyes
    turn: float  # degrees the picture was turned for the detector to find it


@dataclass(frozen=True)
class AlignedFace:
    image: np.ndarray  # uint8 [size, size, 3]
    quad: np.ndarray  # [4, 2] the crop's corners in the source picture: top-left, bottom-left, bottom-right, top-right
    landmarks: FaceLandmarks


# ---------------------------------------------------------------------------------------------
# FFHQ geometry (pure)


def ffhq_quad(left_eye: Point, right_eye: Point, mouth: Point) -> np.ndarray:
    """The crop square's corners (top-left, bottom-left, bottom-right, top-right)."""
    le, re, mo = (np.asarray(p, dtype=np.float64) for p in (left_eye, right_eye, mouth))
    eye_avg = (le + re) / 2
    eye_to_eye = re - le
    eye_to_mouth = mo - eye_avg
    x = eye_to_eye - np.array([-eye_to_mouth[1], eye_to_mouth[0]])  # the eye line, averaged with the face's axis
    x /= np.hypot(*x)
    x *= max(np.hypot(*eye_to_eye) * 2.0, np.hypot(*eye_to_mouth) * 1.8)
    y = np.array([-x[1], x[0]])  # x turned 90° (downwards in picture coordinates)
    c = eye_avg + eye_to_mouth * 0.1
    return np.stack([c - x - y, c - x + y, c + x + y, c + x - y])


def quad_to_crop(quad: np.ndarray, points: np.ndarray) -> np.ndarray:
    """Picture coordinates → fractions of the aligned crop (0..1 across, 0..1 down)."""
    origin = quad[0]
    across = quad[3] - quad[0]
    down = quad[1] - quad[0]
    rel = np.asarray(points, dtype=np.float64) - origin
    return np.stack([rel @ across / (across @ across), rel @ down / (down @ down)], axis=-1)


def ffhq_eye_positions(mouth_to_eye_ratio: float = MOUTH_BELOW_EYES) -> np.ndarray:
    """Where FFHQ's crop puts the eyes ([[x, y], [x, y]] as fractions) for a level face whose
    eye-to-mouth distance is `ratio` eye distances."""
    quad = ffhq_quad((-0.5, 0.0), (0.5, 0.0), (0.0, mouth_to_eye_ratio))
    return quad_to_crop(quad, np.array([[-0.5, 0.0], [0.5, 0.0]]))


# ---------------------------------------------------------------------------------------------
# detection (OpenCV Haar cascades)


def _cv2():
    try:
        import cv2
    except ImportError:
        raise UserError("face alignment needs OpenCV: pip install 'vjgan[portrait]' (or use --align none)") from None
    if not hasattr(cv2, "CascadeClassifier") or not hasattr(cv2, "data"):
        raise UserError("this OpenCV has no Haar cascades (OpenCV 5 dropped them): pip install 'opencv-python-headless<5'")
    return cv2


_CASCADES: dict[str, object] = {}


def _cascade(name: str):
    cv2 = _cv2()
    if name not in _CASCADES:
        path = f"{cv2.data.haarcascades}{name}"
        classifier = cv2.CascadeClassifier(path)
        if classifier.empty():
            raise UserError(f"OpenCV's bundled cascade {name} is missing from this installation")
        _CASCADES[name] = classifier
    return _CASCADES[name]


def _detect(gray: np.ndarray, cascade: str, min_size: int, neighbours: int) -> list[tuple[float, float, float, float]]:
    found = _cascade(cascade).detectMultiScale(gray, scaleFactor=1.1, minNeighbors=neighbours, minSize=(min_size, min_size))
    return [tuple(float(v) for v in r) for r in (found if len(found) else [])]


def _pick_eyes(candidates: list[tuple[float, float, float, float]], box_w: float) -> tuple[Point, Point] | None:
    """The likeliest pair: one each side of the face's middle, level-ish, a plausible distance apart."""
    centres = [(x + w / 2, y + h / 2, w) for x, y, w, h in candidates]
    best, best_score = None, math.inf
    for i, a in enumerate(centres):
        for b in centres[i + 1 :]:
            left, right = (a, b) if a[0] < b[0] else (b, a)
            dx, dy = right[0] - left[0], right[1] - left[1]
            if not (0.25 * box_w <= dx <= 0.7 * box_w) or abs(dy) > 0.3 * dx:
                continue
            expected = [(BOX_LEFT_EYE[0] * box_w, BOX_LEFT_EYE[1] * box_w), (BOX_RIGHT_EYE[0] * box_w, BOX_RIGHT_EYE[1] * box_w)]
            score = (math.dist(left[:2], expected[0]) + math.dist(right[:2], expected[1])) / box_w
            score += abs(left[2] - right[2]) / max(left[2], right[2])
            if score < best_score:
                best, best_score = ((left[0], left[1]), (right[0], right[1])), score
    return best


def _landmarks_upright(gray: np.ndarray) -> tuple[Point, Point, Point, tuple, bool, bool] | None:
    h, w = gray.shape
    faces = _detect(gray, "haarcascade_frontalface_default.xml", max(24, min(h, w) // 12), 5)
    if not faces:
        return None
    fx, fy, fw, fh = max(faces, key=lambda f: f[2] * f[3])
    x0, y0 = int(fx), int(fy)
    upper = gray[y0 : y0 + int(fh * 0.6), x0 : x0 + int(fw)]
    eyes = None
    for cascade in ("haarcascade_eye.xml", "haarcascade_eye_tree_eyeglasses.xml"):
        pair = _pick_eyes(_detect(upper, cascade, max(6, int(fw) // 12), 3), fw)
        if pair is not None:
            eyes = ((pair[0][0] + x0, pair[0][1] + y0), (pair[1][0] + x0, pair[1][1] + y0))
            break
    eyes_found = eyes is not None
    if eyes is None:
        eyes = ((fx + BOX_LEFT_EYE[0] * fw, fy + BOX_LEFT_EYE[1] * fh), (fx + BOX_RIGHT_EYE[0] * fw, fy + BOX_RIGHT_EYE[1] * fh))
    le, re = np.array(eyes[0]), np.array(eyes[1])
    eye_avg, d = (le + re) / 2, float(np.hypot(*(re - le)))
    down = np.array([-(re - le)[1], (re - le)[0]]) / max(d, 1e-6)
    estimate = eye_avg + down * MOUTH_BELOW_EYES * d
    mouth, mouth_found = estimate, False
    lower_top = int(fy + fh * 0.5)
    lower = gray[lower_top : int(fy + fh * 1.1), x0 : x0 + int(fw)]
    if lower.size:
        smiles = [(x + x0 + sw / 2, y + lower_top + sh / 2, sw) for x, y, sw, sh in
                  _detect(lower, "haarcascade_smile.xml", max(8, int(fw) // 6), 20)]
        # Only a detection where a mouth can be: under the eyes' middle, 0.6–1.6 eye distances down.
        plausible = [s for s in smiles if math.dist(s[:2], estimate) < 0.6 * d and 0.25 * d < s[2] < 2.0 * d]
        if plausible:
            best = max(plausible, key=lambda s: s[2])
            mouth, mouth_found = np.array(best[:2]), True
    return (tuple(le), tuple(re), tuple(mouth), (fx, fy, fw, fh), eyes_found, mouth_found)


def find_face(rgb: np.ndarray, source: str = "image") -> FaceLandmarks:
    """Eyes and mouth of the largest face. When the upright search finds no face, or a face whose
    eyes the eye cascade misses (a tilted head), the picture is turned and searched again; a face
    without found eyes is the last resort."""
    cv2 = _cv2()
    gray = cv2.equalizeHist(cv2.cvtColor(np.ascontiguousarray(rgb), cv2.COLOR_RGB2GRAY))
    h, w = gray.shape
    last_resort = None
    for turn in TURNS:
        if turn == 0:
            turned, back = gray, np.eye(3)
        else:
            m = cv2.getRotationMatrix2D((w / 2, h / 2), turn, 1.0)
            cos, sin = abs(m[0, 0]), abs(m[0, 1])
            nw, nh = int(h * sin + w * cos), int(h * cos + w * sin)
            m[0, 2] += nw / 2 - w / 2
            m[1, 2] += nh / 2 - h / 2
            turned = cv2.warpAffine(gray, m, (nw, nh), borderMode=cv2.BORDER_REPLICATE)
            back = np.linalg.inv(np.vstack([m, [0, 0, 1]]))
        found = _landmarks_upright(turned)
        if found is None:
            continue
        le, re, mouth, box, eyes_found, mouth_found = found

        def original(p: Point, back: np.ndarray = back) -> Point:
            x, y, _ = back @ np.array([p[0], p[1], 1.0])
            return (float(x), float(y))

        marks = FaceLandmarks(original(le), original(re), original(mouth), box, eyes_found, mouth_found, turn)
        if eyes_found:
            return marks
        last_resort = last_resort or marks
    if last_resort is not None:
        return last_resort
    raise NoFaceError(f"{source}: no face found (try a frontal, well-lit photo, or --align none)")


# ---------------------------------------------------------------------------------------------
# the crop


def crop_quad(rgb: np.ndarray, quad: np.ndarray, size: int) -> np.ndarray:
    """Sample the square `quad` of the picture into size × size, padding with blur where it leaves the picture."""
    img = np.asarray(rgb, dtype=np.uint8)
    quad = np.asarray(quad, dtype=np.float64).copy()
    qsize = float(np.hypot(*(quad[3] - quad[0])))
    # Shrink first when the square is much larger than the output, so sampling does not alias.
    shrink = int(math.floor(qsize / size * 0.5))
    if shrink > 1:
        h, w = img.shape[:2]
        img = np.asarray(Image.fromarray(img).resize((max(1, round(w / shrink)), max(1, round(h / shrink))), Image.LANCZOS))
        quad /= shrink
        qsize /= shrink
    border = max(int(round(qsize * 0.1)), 3)
    h, w = img.shape[:2]
    left, top = int(math.floor(quad[:, 0].min())) - border, int(math.floor(quad[:, 1].min())) - border
    right, bottom = int(math.ceil(quad[:, 0].max())) + border, int(math.ceil(quad[:, 1].max())) + border
    # Keep only what the square needs, then pad what it needs beyond the picture.
    cl, ct, cr, cb = max(left, 0), max(top, 0), min(right, w), min(bottom, h)
    if cr <= cl or cb <= ct:
        raise UserError("the face lies outside the picture")
    img = img[ct:cb, cl:cr]
    quad -= (cl, ct)
    pads = (max(cl - left, 0), max(ct - top, 0), max(right - cr, 0), max(bottom - cb, 0))  # left, top, right, bottom
    if any(pads):
        img = _pad_softly(img, pads, qsize)
        quad += (pads[0], pads[1])
    # PIL's QUAD transform samples the square (corners: top-left, bottom-left, bottom-right,
    # top-right) at twice the size; the final reduction filters it.
    big = Image.fromarray(img).transform((size * 2, size * 2), Image.QUAD, tuple(quad.flatten()), Image.BILINEAR)
    return np.asarray(big.resize((size, size), Image.LANCZOS))


def _pad_softly(img: np.ndarray, pads: tuple[int, int, int, int], qsize: float) -> np.ndarray:
    pl, pt, pr, pb = pads
    h, w = img.shape[:2]
    out = np.pad(img.astype(np.float32), ((pt, pb), (pl, pr), (0, 0)), mode="reflect")
    H, W = out.shape[:2]
    ys, xs = np.mgrid[0:H, 0:W].astype(np.float32)
    # How far outside the picture each pixel lies, as a fraction of that side's padding.
    outside_x = np.maximum(np.maximum(pl - xs, 0) / max(pl, 1), np.maximum(xs - (pl + w - 1), 0) / max(pr, 1))
    outside_y = np.maximum(np.maximum(pt - ys, 0) / max(pt, 1), np.maximum(ys - (pt + h - 1), 0) / max(pb, 1))
    mask = np.clip(np.maximum(outside_x, outside_y), 0.0, 1.0)[..., None]
    blurred = gaussian_filter(out, sigma=(qsize * 0.02, qsize * 0.02, 0))
    out += (blurred - out) * np.clip(mask * 3.0, 0.0, 1.0)
    out += (np.median(img.reshape(-1, 3), axis=0) - out) * mask
    return np.clip(np.rint(out), 0, 255).astype(np.uint8)


def align_face(rgb: np.ndarray, size: int, source: str = "image") -> AlignedFace:
    """The FFHQ-style crop of the picture's largest face, size × size."""
    marks = find_face(rgb, source)
    quad = ffhq_quad(marks.left_eye, marks.right_eye, marks.mouth)
    return AlignedFace(crop_quad(rgb, quad, size), quad, marks)
