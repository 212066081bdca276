"""io.image: one rule per Pillow mode (load_image's table), on files the tests write byte by byte."""
import os
import signal
import socket
import stat
import struct
import tracemalloc
import zlib

import numpy as np
import pytest
from PIL import Image

from numpy_cam.io import image as image_io
from numpy_cam.io.image import load_image, pil_to_rgb, read_png_text, save_png

G16 = np.array([[0, 1, 128, 129, 255], [256, 257, 32767, 32768, 65535]], np.uint16)
G16_TO_8 = np.array([[0, 0, 0, 1, 1], [1, 1, 127, 128, 255]], np.uint8)      # round(v / 257), by hand


def chunk(kind, data):
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def write_png(path, samples, bit_depth, colour_type, extra=b""):
    """A PNG of (H, W) or (H, W, C) samples, 8 or 16 bits, big-endian, filter 0 on every row."""
    samples = samples.reshape(samples.shape[0], samples.shape[1], -1)
    dtype = ">u2" if bit_depth == 16 else np.uint8
    rows = b"".join(b"\0" + row.astype(dtype).tobytes() for row in samples)
    ihdr = struct.pack(">IIBBBBB", samples.shape[1], samples.shape[0], bit_depth, colour_type, 0, 0, 0)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + extra + chunk(b"IDAT", zlib.compress(rows))
                     + chunk(b"IEND", b""))
    return path


def write_tiff(path, pixels, bits_per_sample, sample_format, photometric=1, width=None):
    """An uncompressed little-endian one-strip gray TIFF; ``pixels`` are the strip's bytes."""
    height = pixels.shape[0]
    width = width or pixels.shape[1]
    data = pixels.astype(pixels.dtype.newbyteorder("<")).tobytes()
    tags = [(256, 4, width), (257, 4, height), (258, 3, bits_per_sample), (259, 3, 1), (262, 3, photometric),
            (273, 4, 8 + 2 + 12 * 9 + 4), (277, 3, 1), (279, 4, len(data)), (339, 3, sample_format)]
    ifd = struct.pack("<H", len(tags)) + b"".join(
        struct.pack("<HHI", tag, kind, 1) + struct.pack("<I" if kind == 4 else "<HH", value, *([0] * (kind == 3)))
        for tag, kind, value in tags) + b"\0\0\0\0"
    path.write_bytes(b"II*\0" + struct.pack("<I", 8) + ifd + data)
    return path


def gray(rgb):
    """The one channel of a gray (H, W, 3) result, after checking the three are equal."""
    assert rgb.dtype == np.uint8 and rgb.ndim == 3 and rgb.shape[2] == 3
    assert (rgb == rgb[..., :1]).all()
    return rgb[..., 0]


# -- 16-bit gray: round(v / 257), from the file's declared depth, never from the values ----------

def test_16_bit_gray_png_is_scaled_by_257(tmp_path):
    Image.fromarray(G16).save(tmp_path / "g16.png")              # Pillow 9 opens it as I, newer as I;16
    np.testing.assert_array_equal(gray(load_image(tmp_path / "g16.png")), G16_TO_8)


def test_two_16_bit_pngs_differing_in_one_pixel_differ_in_at_most_that_pixel(tmp_path):
    # The case: the old rule scaled by 257 only when max > 255, so these two were read as
    # [0, 100, 255] and [0, 0, 1]: the whole picture changed with one pixel.
    a = load_image(write_png(tmp_path / "a.png", np.array([[0, 100, 255]]), 16, 0))
    b = load_image(write_png(tmp_path / "b.png", np.array([[0, 100, 256]]), 16, 0))
    np.testing.assert_array_equal(gray(a), [[0, 0, 1]])
    np.testing.assert_array_equal(gray(b), [[0, 0, 1]])
    photo = np.random.default_rng(0).integers(0, 256, size=(6, 7), dtype=np.uint16)
    photo[2, 3] = 255
    c = load_image(write_png(tmp_path / "c.png", photo, 16, 0))
    photo[2, 3] = 256
    d = load_image(write_png(tmp_path / "d.png", photo, 16, 0))
    assert np.argwhere((c != d).any(axis=2)).tolist() in ([], [[2, 3]])
    np.testing.assert_array_equal(gray(c), (photo.astype(np.int64) + 128) // 257)


def test_16_bit_gray_from_pgm_tiff_and_12_bit_tiff(tmp_path):
    (tmp_path / "g.pgm").write_bytes(b"P5\n5 2\n65535\n" + G16.astype(">u2").tobytes())   # Pillow: mode I
    np.testing.assert_array_equal(gray(load_image(tmp_path / "g.pgm")), G16_TO_8)
    # maxval 1023: Pillow scales to 0..65535 (0, 64, 32800, 64062, 65535), then / 257
    (tmp_path / "g10.pgm").write_bytes(b"P5\n5 1\n1023\n" + np.array([0, 1, 512, 1000, 1023], ">u2").tobytes())
    np.testing.assert_array_equal(gray(load_image(tmp_path / "g10.pgm")), [[0, 0, 128, 249, 255]])
    Image.fromarray(G16).save(tmp_path / "g16.tif")              # mode I;16
    np.testing.assert_array_equal(gray(load_image(tmp_path / "g16.tif")), G16_TO_8)
    # 12-bit samples, packed two in three bytes: Pillow unpacks them to 0..4095 in an I;16 image
    bits = np.unpackbits(np.array([0, 1, 2048, 4095], ">u2").view(np.uint8).reshape(4, 2), axis=1)[:, 4:]
    write_tiff(tmp_path / "g12.tif", np.packbits(bits.ravel())[None], 12, 1, width=4)
    np.testing.assert_array_equal(gray(load_image(tmp_path / "g12.tif")), [[0, 0, 128, 255]])  # 255 v / 4095


def test_16_bit_gray_transparent_colour_is_white(tmp_path):
    path = write_png(tmp_path / "t.png", G16, 16, 0, chunk(b"tRNS", struct.pack(">H", 257)))
    expected = G16_TO_8.copy()
    expected[1, 1] = 255                                          # the pixel whose value is the tRNS key
    np.testing.assert_array_equal(gray(load_image(path)), expected)


def test_16_bit_colour_is_pillows_high_byte(tmp_path):
    rgb16 = np.stack([G16, G16[::-1], np.full_like(G16, 40000)], axis=-1)     # (2, 5, 3)
    rgb = load_image(write_png(tmp_path / "c.png", rgb16, 16, 2))
    np.testing.assert_array_equal(rgb, rgb16 >> 8)               # what Pillow keeps, in 9.1 as in 13


def test_16_bit_pil_image_is_recognised_until_its_file_is_forgotten(tmp_path):
    (tmp_path / "g.pgm").write_bytes(b"P5\n5 2\n65535\n" + G16.astype(">u2").tobytes())
    with Image.open(tmp_path / "g.pgm") as im:
        np.testing.assert_array_equal(gray(pil_to_rgb(im)), G16_TO_8)
    with Image.open(tmp_path / "g.pgm") as im:
        copy = im.copy()                                          # mode I, no format, no tile: a 32-bit image
    with pytest.raises(ValueError, match=r"^the image is a 32-bit integer image \(mode I\)"):
        load_image(copy)
    np.testing.assert_array_equal(gray(load_image(Image.fromarray(G16))), G16_TO_8)   # I;16 says 16-bit


# -- refused: integer images that are not unsigned 8 / 16-bit, floats outside [0, 1], LAB ---------

def test_signed_and_32_bit_integer_images_are_refused(tmp_path):
    write_tiff(tmp_path / "s16.tif", G16.astype(np.int16), 16, 2)
    with pytest.raises(ValueError, match=r"^'.*s16\.tif' is a 16-bit signed integer image \(mode I\); "
                                         r"expected 8- or 16-bit unsigned samples: convert it to 8-bit first$"):
        load_image(tmp_path / "s16.tif")
    Image.fromarray(G16.astype(np.int32) * 3).save(tmp_path / "i32.tif")
    with pytest.raises(ValueError, match=r"^'.*i32\.tif' is a 32-bit integer image \(mode I\)"):
        load_image(str(tmp_path / "i32.tif"))
    with pytest.raises(ValueError, match=r"^the image is a 32-bit integer image \(mode I\)"):
        load_image(Image.fromarray(np.zeros((2, 2), np.int32)))


def test_float_tiff_in_unit_interval_is_mapped_not_black(tmp_path):
    # The case: a float TIFF in [0, 1] was read as nearly black (values clipped to 0 or 1).
    values = np.array([[0, 0.25, 0.5, 1], [1 / 255, 0.998, 0.001, 0.999]], np.float32)
    Image.fromarray(values).save(tmp_path / "f.tif")
    np.testing.assert_array_equal(gray(load_image(tmp_path / "f.tif")), [[0, 64, 128, 255], [1, 254, 0, 255]])


@pytest.mark.parametrize("values, found", [
    ([[0, 3.5]], r"with values in \[0, 3\.5\]"),
    ([[-0.25, 0.5]], r"with values in \[-0\.25, 0\.5\]"),
    ([[0, 255]], r"with values in \[0, 255\]"),
    ([[np.nan, 0.5]], r"holding NaN or infinity; expected finite values in \[0, 1\]$"),
    ([[np.inf, 0.5]], r"holding NaN or infinity"),
])
def test_float_images_outside_unit_interval_are_refused(tmp_path, values, found):
    Image.fromarray(np.array(values, np.float32)).save(tmp_path / "f.tif")
    with pytest.raises(ValueError, match=r"^'.*f\.tif' is a 32-bit float image \(mode F\) " + found):
        load_image(tmp_path / "f.tif")


def test_float_refusal_says_what_is_expected():
    with pytest.raises(ValueError, match=r"^the image is a 32-bit float image \(mode F\) with values in \[0, 2\]; "
                                         r"expected values in \[0, 1\] \(0 black, 1 white\): rescale it"):
        load_image(Image.fromarray(np.array([[0, 2]], np.float32)))


def test_lab_is_refused():
    with pytest.raises(ValueError, match=r"^the image is a CIELAB image \(mode LAB\); expected RGB, gray, "
                                         r"palette or CMYK: convert it to RGB first$"):
        load_image(Image.new("LAB", (2, 2)))


# -- 8-bit modes --------------------------------------------------------------------------------

@pytest.mark.parametrize("mode, pixel, expected", [
    ("1", 1, (255, 255, 255)),
    ("L", 77, (77, 77, 77)),
    ("RGB", (1, 2, 3), (1, 2, 3)),
    ("RGBX", (1, 2, 3, 0), (1, 2, 3)),
    ("RGBA", (200, 100, 0, 128), (227, 177, 127)),              # over white: c + (255 - c)(255 - a) / 255
    ("RGBa", (100, 50, 0, 128), (227, 177, 127)),               # premultiplied: c = 100 * 255 / 128 first
    ("LA", (0, 0), (255, 255, 255)),                             # fully transparent: white
    ("La", (0, 64), (191, 191, 191)),
    ("CMYK", (127, 127, 127, 127), (64, 64, 64)),                # (255 - C)(255 - K) / 255
    ("YCbCr", (100, 128, 128), (100, 100, 100)),
    ("HSV", (0, 255, 255), (255, 0, 0)),
])
def test_8_bit_modes(mode, pixel, expected):
    rgb = load_image(Image.new(mode, (2, 1), pixel))
    assert rgb.shape == (1, 2, 3) and rgb.dtype == np.uint8
    np.testing.assert_array_equal(rgb[0, 0], expected)


def test_palette_and_colour_key_transparency_are_white(tmp_path):
    palette = chunk(b"PLTE", bytes([10, 20, 30, 40, 50, 60]))
    path = write_png(tmp_path / "p.png", np.array([[0, 1]]), 8, 3, palette + chunk(b"tRNS", b"\x00"))
    np.testing.assert_array_equal(load_image(path)[0], [[255, 255, 255], [40, 50, 60]])
    path = write_png(tmp_path / "l.png", np.array([[7, 9]]), 8, 0, chunk(b"tRNS", struct.pack(">H", 7)))
    np.testing.assert_array_equal(gray(load_image(path)), [[255, 9]])
    path = write_png(tmp_path / "rgb.png", np.array([[[1, 2, 3], [4, 5, 6]]]), 8, 2,
                     chunk(b"tRNS", struct.pack(">HHH", 4, 5, 6)))
    np.testing.assert_array_equal(load_image(path)[0], [[1, 2, 3], [255, 255, 255]])


def test_exif_orientation_turns_16_bit_and_float_images_upright(tmp_path):
    exif = Image.Exif()
    exif[0x0112] = 6                                              # rotate 90 degrees clockwise
    Image.fromarray(G16[:, :3]).save(tmp_path / "g16.png", exif=exif)
    np.testing.assert_array_equal(gray(load_image(tmp_path / "g16.png")), np.rot90(G16_TO_8[:, :3], -1))
    Image.fromarray(np.array([[0, 1]], np.float32)).save(tmp_path / "f.tif", exif=exif)
    np.testing.assert_array_equal(gray(load_image(tmp_path / "f.tif")), [[0], [255]])


def test_a_plugin_error_on_a_damaged_file_is_one_clear_line(tmp_path, monkeypatch):
    # Pillow's plugins raise more than OSError on damaged files (Pillow 9.1 on some ICO files:
    # TypeError; struct.error on short EXIF blocks); each becomes "cannot read ... as an image".
    Image.new("RGB", (2, 2)).save(tmp_path / "x.png")
    for error in (struct.error("unpack requires a buffer of 4 bytes"), TypeError("'NoneType' object is not iterable")):
        def fail(im, error=error):
            raise error
        monkeypatch.setattr(image_io.ImageOps, "exif_transpose", fail)
        with pytest.raises(ValueError, match=r"^cannot read '.*x\.png' as an image: "):
            load_image(tmp_path / "x.png")


def test_a_missing_file_is_still_file_not_found(tmp_path):
    with pytest.raises(FileNotFoundError):
        load_image(tmp_path / "missing.png")


@pytest.mark.parametrize("mode", ["L", "I;16", "F"])
def test_a_tiff_rotated_by_its_orientation_tag_is_upright(tmp_path, mode):
    # Pillow's TIFF decoder applies the tag itself (Pillow 9.1 keeps it, so a second turn would
    # follow); Pillow 13 garbles it when it maps a named file (hence the file object).
    exif = Image.Exif()
    exif[0x0112] = 6                                              # rotate 90 degrees clockwise
    stored = np.arange(6).reshape(2, 3) * 40
    values = {"L": stored.astype(np.uint8), "I;16": stored.astype(np.uint16) * 257,
              "F": (stored / 255).astype(np.float32)}
    Image.fromarray(values[mode]).save(tmp_path / "r.tif", exif=exif)
    np.testing.assert_array_equal(gray(load_image(tmp_path / "r.tif")), np.rot90(stored, -1))


# -- save_png: only regular files replaced, short temporary names, cleanup, text chunks ----------

RGB = np.zeros((2, 3, 3), np.uint8)


def test_save_png_refuses_a_folder_a_fifo_and_a_socket(tmp_path):
    folder = tmp_path / "cam.png"
    folder.mkdir()
    with pytest.raises(IsADirectoryError, match=rf"^cannot save '{folder}': it is a folder; expected a file name$"):
        save_png(folder, RGB)
    fifo = tmp_path / "fifo.png"
    os.mkfifo(fifo)
    with pytest.raises(ValueError, match=rf"^cannot save '{fifo}': it is a pipe \(FIFO\), not a regular file; "
                                         r"save_png replaces only regular files$"):
        save_png(fifo, RGB)
    with socket.socket(socket.AF_UNIX) as sock:
        sock.bind(str(tmp_path / "s.png"))
        with pytest.raises(ValueError, match=r"it is a socket, not a regular file"):
            save_png(tmp_path / "s.png", RGB)
    assert sorted(os.listdir(tmp_path)) == ["cam.png", "fifo.png", "s.png"]      # no temporary file made
    assert stat.S_ISFIFO(os.lstat(fifo).st_mode) and os.listdir(folder) == []


def test_save_png_refuses_a_device(tmp_path):
    device = tmp_path / "null.png"
    try:
        os.mknod(device, stat.S_IFCHR | 0o600, os.makedev(1, 3))    # a /dev/null of our own, not the system's
    except (PermissionError, AttributeError):
        pytest.skip("making a device node needs root")
    with pytest.raises(ValueError, match=r"it is a character device, not a regular file"):
        save_png(device, RGB)
    assert stat.S_ISCHR(os.lstat(device).st_mode) and os.listdir(tmp_path) == ["null.png"]


def test_save_png_writes_through_a_symbolic_link(tmp_path):
    (tmp_path / "runs").mkdir()
    target = tmp_path / "runs" / "cam.png"
    target.write_bytes(b"old")
    (tmp_path / "latest.png").symlink_to(target)
    save_png(tmp_path / "latest.png", RGB)
    assert (tmp_path / "latest.png").is_symlink()                 # the link kept, its target replaced
    np.testing.assert_array_equal(load_image(target), RGB)
    assert os.listdir(tmp_path / "runs") == ["cam.png"]
    (tmp_path / "dangling.png").symlink_to(tmp_path / "runs" / "new.png")
    save_png(tmp_path / "dangling.png", RGB)                      # a link to a file not yet there: made
    np.testing.assert_array_equal(load_image(tmp_path / "runs" / "new.png"), RGB)
    (tmp_path / "to_folder.png").symlink_to(tmp_path / "runs")
    with pytest.raises(IsADirectoryError, match=rf"its target '{tmp_path / 'runs'}' is a folder"):
        save_png(tmp_path / "to_folder.png", RGB)


def test_save_png_takes_a_long_legal_name_and_refuses_one_over_the_limit(tmp_path):
    long_name = "x" * 246 + ".png"                                # 250 bytes: its old temporary name had 268
    save_png(tmp_path / long_name, RGB)
    np.testing.assert_array_equal(load_image(tmp_path / long_name), RGB)
    assert os.listdir(tmp_path) == [long_name]
    accents = "é" * 123 + ".png"                                  # 250 bytes, 127 characters
    save_png(tmp_path / accents, RGB)
    assert sorted(os.listdir(tmp_path)) == sorted([long_name, accents])
    limit = os.pathconf(tmp_path, "PC_NAME_MAX")
    too_long = "y" * (limit - 3) + ".png"
    with pytest.raises(ValueError, match=rf"the name is {limit + 1} bytes, over the file-name limit of {limit} bytes"):
        save_png(tmp_path / too_long, RGB)


def test_temporary_name_stays_within_the_limit():
    for name, limit in [("x" * 300, 255), ("é" * 200, 255), ("cam.png", 20), ("cam.png", 10)]:
        tmp = image_io._temporary_name(name, limit)
        assert len(os.fsencode(tmp)) <= max(limit, 18) and tmp.startswith(".") and tmp.endswith(".tmp")
    assert image_io._temporary_name("cam.png", 255).startswith(".cam.png.")


@pytest.mark.parametrize("stop", [KeyboardInterrupt, SystemExit])
def test_save_png_removes_its_temporary_file_when_interrupted(tmp_path, monkeypatch, stop):
    def half_then_stop(self, fp, *args, **kwargs):
        fp.write(b"\x89PNG\r\n\x1a\n half a file")
        raise stop()

    monkeypatch.setattr(Image.Image, "save", half_then_stop)
    (tmp_path / "keep.png").write_bytes(b"previous")
    with pytest.raises(stop):
        save_png(tmp_path / "keep.png", RGB)
    assert os.listdir(tmp_path) == ["keep.png"] and (tmp_path / "keep.png").read_bytes() == b"previous"


def test_save_png_removes_its_temporary_file_on_sigterm(tmp_path, monkeypatch):
    class Terminated(BaseException):                              # as the command's SIGTERM handler raises
        pass

    def raise_terminated(signum, frame):
        raise Terminated

    def half_then_signal(self, fp, *args, **kwargs):
        fp.write(b"\x89PNG\r\n\x1a\n half a file")
        os.kill(os.getpid(), signal.SIGTERM)
        fp.write(b"never")                                        # the handler runs before this line ends

    previous = signal.signal(signal.SIGTERM, raise_terminated)
    try:
        monkeypatch.setattr(Image.Image, "save", half_then_signal)
        with pytest.raises(Terminated):
            save_png(tmp_path / "cam.png", RGB)
    finally:
        signal.signal(signal.SIGTERM, previous)
    assert os.listdir(tmp_path) == []


@pytest.mark.parametrize("path, error, message", [
    ("", ValueError, r"^cannot save '': expected a file name$"),
    ("folder/", ValueError, r"^cannot save 'folder/': expected a file name$"),
])
def test_save_png_needs_a_file_name(tmp_path, monkeypatch, path, error, message):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(error, match=message):
        save_png(path, RGB)
    assert os.listdir(tmp_path) == []


def test_save_png_text_round_trip(tmp_path):
    text = {"Software": "numpy-cam 1.2.3", "Comment": "café, 2 spaces  inside", "Title": "€ is not Latin-1"}
    save_png(tmp_path / "cam.png", RGB, text=text)
    assert read_png_text(tmp_path / "cam.png") == text
    with Image.open(tmp_path / "cam.png") as im:                  # Pillow reads the same chunks
        assert im.text == text
    save_png(tmp_path / "plain.png", RGB, text={})
    assert read_png_text(tmp_path / "plain.png") == {}


@pytest.mark.parametrize("text, error, message", [
    ([("Software", "x")], TypeError, r"^text must be a mapping of str to str; got list$"),
    ({b"Software": "x"}, TypeError, r"^text keys must be str; got bytes$"),
    ({"Software": 1}, TypeError, r"^text\['Software'\] must be a str; got int$"),
    ({"": "x"}, ValueError, r"^text key '' is not a PNG keyword: expected 1 to 79 printable Latin-1 characters"),
    ({"k" * 80: "x"}, ValueError, r"is not a PNG keyword"),
    ({"€uro": "x"}, ValueError, r"is not a PNG keyword"),
    ({"new\nline": "x"}, ValueError, r"is not a PNG keyword"),
    ({" Software": "x"}, ValueError, r"no leading, trailing or double space"),
    ({"a  b": "x"}, ValueError, r"is not a PNG keyword"),
])
def test_save_png_refuses_bad_text(tmp_path, text, error, message):
    with pytest.raises(error, match=message):
        save_png(tmp_path / "cam.png", RGB, text=text)
    assert os.listdir(tmp_path) == []


# -- read_png_text: the text chunks, without decoding pixels, bounded by the file's size ---------

def text_png(path, *chunks, idat=b"not even zlib"):
    """A PNG whose chunks are given; its pixel data need not decode: read_png_text never reads it."""
    ihdr = chunk(b"IHDR", struct.pack(">IIBBBBB", 1, 1, 8, 0, 0, 0, 0))
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + ihdr + b"".join(chunks) + chunk(b"IDAT", idat) + chunk(b"IEND", b""))
    return path


def test_read_png_text_reads_every_kind_of_text_chunk_and_never_the_pixels(tmp_path):
    itxt = b"Title\0\1\0en\0Titel\0" + zlib.compress("€ and ü".encode())
    path = text_png(tmp_path / "t.png", chunk(b"tEXt", b"Software\0numpy-cam 9"),
                    chunk(b"zTXt", b"Comment\0\0" + zlib.compress(b"deflated")), chunk(b"iTXt", itxt),
                    chunk(b"iTXt", b"Plain\0\0\0\0\0" + "ok ✓".encode()))
    assert read_png_text(path) == {"Software": "numpy-cam 9", "Comment": "deflated", "Title": "€ and ü",
                                   "Plain": "ok ✓"}
    after = path.read_bytes()[:-12] + chunk(b"tEXt", b"Late\0after IDAT") + chunk(b"IEND", b"")
    (tmp_path / "late.png").write_bytes(after)
    assert read_png_text(tmp_path / "late.png")["Late"] == "after IDAT"


def test_read_png_text_skips_damaged_chunks(tmp_path):
    bad_crc = chunk(b"tEXt", b"Software\0numpy-cam 9")[:-4] + b"\0\0\0\0"
    path = text_png(tmp_path / "t.png", bad_crc, chunk(b"tEXt", b"no separator"),
                    chunk(b"zTXt", b"Comment\0\0not zlib"), chunk(b"zTXt", b"Cut\0\0" + zlib.compress(b"text")[:-5]),
                    chunk(b"iTXt", b"Method\0\1\5\0\0" + zlib.compress(b"x")), chunk(b"iTXt", b"Bad\0\0\0\0\0\xff"),
                    chunk(b"tEXt", b"Author\0me"))
    assert read_png_text(path) == {"Author": "me"}
    overlong = struct.pack(">I", 2**31) + b"tEXt" + b"Software\0numpy-cam 9"      # declares 2 GiB
    (tmp_path / "long.png").write_bytes(path.read_bytes()[:33] + overlong)
    assert read_png_text(tmp_path / "long.png") == {}


def test_read_png_text_is_not_fooled_into_inflating_a_bomb(tmp_path):
    bomb = zlib.compress(b"\0" * (64 << 20), 9)                   # 64 MiB of text in about 64 KB
    path = text_png(tmp_path / "bomb.png", chunk(b"zTXt", b"Comment\0\0" + bomb), chunk(b"tEXt", b"Author\0me"))
    tracemalloc.start()
    try:
        texts = read_png_text(path)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert texts == {"Author": "me"}                              # the bomb skipped, the rest read
    assert peak < 4 * path.stat().st_size + (1 << 20), peak       # about twice the file's size at most


def test_read_png_text_of_what_is_not_a_png_file(tmp_path):
    Image.new("RGB", (2, 2)).save(tmp_path / "x.jpg")
    (tmp_path / "empty.png").write_bytes(b"")
    (tmp_path / "short.png").write_bytes(b"\x89PNG\r\n\x1a\n\0\0")
    os.mkfifo(tmp_path / "fifo.png")                              # no writer: opening must not wait
    for name in ["x.jpg", "empty.png", "short.png", "missing.png", "fifo.png", "."]:
        assert read_png_text(tmp_path / name) == {}, name
