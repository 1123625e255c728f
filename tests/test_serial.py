"""num_workers=1: rendering and encoding in the calling process, as in parallel_animate."""

from animators import BarCode, OddSize, bar_params
from helpers import assert_video, serial_frames

from celery_animate.frames import padded_shape


def test_serial_make_video(tmp_path):
    params = bar_params(12)
    result = BarCode().make_video(tmp_path / "serial.mp4", params, fps=12, num_workers=1,
                                  video_quality=10, disable_progress_bar=True)
    assert result.n_frames == 12 and result.encoder == "libx264" and result.fps == 12
    assert_video(tmp_path / "serial.mp4", serial_frames(BarCode(), params))


def test_odd_sizes_are_padded_not_rescaled(tmp_path):
    params = bar_params(4)
    result = OddSize().make_video(tmp_path / "odd.mp4", params, fps=4, num_workers=1,
                                  video_quality=10, disable_progress_bar=True)
    assert (result.height, result.width) == padded_shape(150, 300) == (160, 304)
    expected = serial_frames(OddSize(), params)
    assert expected[0].shape == (160, 304, 3)
    frames = assert_video(tmp_path / "odd.mp4", expected, size=(300, 150))
    # The padding repeats the edge pixels; the picture itself sits unscaled at the top left.
    assert abs(frames[0][:150, :300].astype(int).mean() - expected[0][:150, :300].mean()) < 2


def test_serial_gif(tmp_path):
    params = bar_params(12)
    result = BarCode().make_video(tmp_path / "serial.gif", params, fps=12, num_workers=1,
                                  disable_progress_bar=True)
    assert result.encoder == "gif" and result.fps == 12.5  # 8 hundredths of a second a frame
    assert_video(tmp_path / "serial.gif", serial_frames(BarCode(), params), max_error=0.5)
