"""bench/image at its smoke size, beside the image tests that build what it rebuilds (tests/conftest.py GROUPS)."""

import json

import pytest
from image_support import build_vars
from test_bench import bench

pytestmark = [pytest.mark.slow]


def test_image(built_image, image_output, tmp_path):
    """The test session's image, rebuilt with nothing changed (the full bench's cold, incremental and dib builds
    take minutes each: test_golden_image covers those paths)."""
    extra = tmp_path / "vars.json"
    extra.write_text(json.dumps(build_vars(image_output)))
    out = bench("image", "--smoke", str(extra))
    assert out["smoke"] and out["bar"]["no_change_changed_0"] == {"measured": [0], "met": True}
