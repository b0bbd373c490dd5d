"""The command line speaks in command-line terms: one line on stderr, the flag, the bad value as
typed, what may be typed instead and "did you mean"; the exit statuses; ``--version``; and
no torch for ``fmtlab --help`` or ``fmtlab formats``."""
import pathlib
import re
import subprocess
import sys

import numpy as np
import pytest

import fmtlab
from fmtlab import cli
from fmtlab._parse import parse_biases, parse_formats, parse_mma_model, parse_roundings
from fmtlab.drift.configs import parse_configs

ROOT = pathlib.Path(__file__).resolve().parents[1]

FORMATS_ALLOWED = ("fp32, tf32, fp16, bf16, cfloat8_1_4_3, cfloat8_1_5_2, shp, uhp, e4m3fn, e5m2, e4m3fnuz, "
                   "e5m2fnuz, e4m3b11fnuz, e4m3, e3m4, e2m3fn, e3m2fn, e2m1fn, e8m0, p3109_8p1, p3109_8p1_unsigned, "
                   "p3109_8p3, p3109_8p3_finite, p3109_8p3_unsigned, p3109_8p3_unsigned_finite, p3109_8p4, "
                   "p3109_8p4_finite, p3109_8p4_unsigned, p3109_8p4_unsigned_finite, p3109_8p7_finite, "
                   "p3109_8p8_unsigned_finite, or NAME:bias=B,subnormals=S (cfloat8_1_4_3, cfloat8_1_5_2, shp)")
BIASES_ALLOWED = "all, auto, or biases 0..63 as a list such as 5,7,10-14"
ROUNDINGS_ALLOWED = "nearest_even, nearest_away, toward_zero, up, down, odd, stochastic (comma-separated)"
GPUS_ALLOWED = ("GPU:INPUT[:OUT][:promote=N] with GPU one of v100, t4, a100, a2, a30, ada, l40s, h100, h200, "
                "b200, mi100, mi250x, mi300x, or fp32_fma, fp32_pairwise, exact[:INPUT]")
CONFIGS_ALLOWED = ("all, or a comma-separated list of fp32, bf16_mixed, bf16_pure_rne, bf16_pure_sr, "
                   "fp16_mixed_noscale, fp16_mixed_dynscale, e4m3_e5m2, cfloat8, h100_fp8, mxfp8, nvfp4, fp8_current, "
                   "fp8_delayed, fp8_block128")
PYTHON_WORDS = ("fl.", "Format(", "biases has", "roundings has", "models has", "configs=")


def run_cli(capsys, *argv):
    """(exit status, stdout, stderr) of ``fmtlab ARGV`` run in this process."""
    try:
        status = cli.main(list(argv))
    except SystemExit as exit_:  # argparse: --help, --version, usage errors
        status = exit_.code
    captured = capsys.readouterr()
    return status, captured.out, captured.err


# ---- the parsers, given the flag -----------------------------------------------------------------

@pytest.mark.parametrize("parse, text, argument, message", [
    (parse_biases, "70", "--bias", f"--bias 70 is not allowed; allowed: {BIASES_ALLOWED}"),
    (parse_biases, "3,99", "--bias", f"--bias 99 is not allowed; allowed: {BIASES_ALLOWED}"),
    (parse_biases, "60-70", "--bias", f"--bias 60-70 is not allowed; allowed: {BIASES_ALLOWED}"),
    (parse_biases, "5-3", "--bias", f"--bias 5-3 is not allowed (an empty range); allowed: {BIASES_ALLOWED}"),
    (parse_biases, "al", "--bias", f"--bias al is not allowed (did you mean 'all'?); allowed: {BIASES_ALLOWED}"),
    (parse_biases, "1,x", "--bias", f"--bias x is not allowed; allowed: {BIASES_ALLOWED}"),
    (parse_biases, "", "--bias", f"--bias '' is not allowed; allowed: {BIASES_ALLOWED}"),
    (parse_roundings, "rne", "--rounding",
     f"--rounding rne is not allowed (did you mean 'nearest_even'?); allowed: {ROUNDINGS_ALLOWED}"),
    (parse_roundings, "nearest_even,stochastc", "--rounding",
     f"--rounding stochastc is not allowed (did you mean 'stochastic'?); allowed: {ROUNDINGS_ALLOWED}"),
    (parse_roundings, "nearest-even", "--rounding",
     f"--rounding nearest-even is not allowed (did you mean 'nearest_even'?); allowed: {ROUNDINGS_ALLOWED}"),
    (parse_formats, "fp16,cfloat_1_4_3", "--formats",
     f"--formats cfloat_1_4_3 is not allowed (did you mean 'cfloat8_1_4_3'?); allowed: {FORMATS_ALLOWED}"),
    (parse_formats, "cfloat_1_4_3:bias=3", "--formats",
     f"--formats cfloat_1_4_3:bias=3 is not allowed (did you mean 'cfloat8_1_4_3:bias=3'?); "
     f"allowed: {FORMATS_ALLOWED}"),
    (parse_formats, "fp16,cfloat8_1_4_3:bias=99", "--formats",
     "--formats cfloat8_1_4_3:bias=99 is not allowed; allowed: bias=0..63 for cfloat8_1_4_3"),
    (parse_formats, "fp16:bias=3", "--formats",
     "--formats fp16:bias=3 is not allowed; allowed: fp16 has the fixed bias 15; bias=B (0..63) only for "
     "cfloat8_1_4_3, cfloat8_1_5_2, shp"),
    (parse_formats, "cfloat8_1_4_3:bais=3", "--formats",
     "--formats cfloat8_1_4_3:bais=3 is not allowed (did you mean 'cfloat8_1_4_3:bias=3'?); "
     "allowed: cfloat8_1_4_3:bias=B,subnormals=S, each option written KEY=VALUE"),
    (parse_formats, "cfloat8_1_5_2:bias=3,subnormals=tesler", "--formats",
     "--formats cfloat8_1_5_2:bias=3,subnormals=tesler is not allowed "
     "(did you mean 'cfloat8_1_5_2:bias=3,subnormals=tesla'?); allowed: subnormals=ieee or tesla for cfloat8_1_5_2"),
    (parse_formats, "bf16:subnormals=tesla", "--formats",
     "--formats bf16:subnormals=tesla is not allowed; allowed: bf16 has subnormals=ieee only; "
     "subnormals=ieee or tesla only for cfloat8_1_4_3, cfloat8_1_5_2, shp"),
    (parse_formats, "cfloat8_1_4_3:bias=1,bias=2", "--formats",
     "--formats cfloat8_1_4_3:bias=1,bias=2 is not allowed; allowed: each of bias=B, subnormals=S at most once"),
    (parse_formats, ",", "--formats", f"--formats , is not allowed; allowed: {FORMATS_ALLOWED}"),
    (parse_mma_model, "h10:e4m3", "--models",
     f"--models h10:e4m3 is not allowed (did you mean 'h100:e4m3'?); allowed: {GPUS_ALLOWED}"),
    (parse_mma_model, "h100-e4m3fn-fp3", "--models",
     f"--models h100-e4m3fn-fp3 is not allowed (did you mean 'h100-e4m3fn-fp32'?); allowed: {GPUS_ALLOWED}"),
    (parse_mma_model, "h100:e4m3fm", "--models",
     "--models h100:e4m3fm is not allowed (did you mean 'h100:e4m3fn'?); allowed: h100:INPUT with INPUT one of "
     "fp16, bf16, tf32, e4m3fn, e5m2"),
    (parse_mma_model, "a100:e5m2", "--models",
     "--models a100:e5m2 is not allowed; allowed: a100:INPUT with INPUT one of fp16, bf16, tf32"),
    (parse_mma_model, "h100:tf32:fp16", "--models",
     "--models h100:tf32:fp16 is not allowed; allowed: h100:tf32:OUT with OUT fp32 (on h100, fp16 output only "
     "for fp16, e4m3fn, e5m2 inputs)"),
    (parse_mma_model, "h100:e4m3fn:promot=128", "--models",
     "--models h100:e4m3fn:promot=128 is not allowed (did you mean 'h100:e4m3fn:promote=128'?); "
     "allowed: GPU:INPUT[:OUT][:promote=N]: the one option is promote=N"),
    (parse_mma_model, "h100:e4m3fn:promote=100", "--models",
     "--models h100:e4m3fn:promote=100 is not allowed; allowed: promote=N with N a multiple of the block (32), "
     "or promote=0 (none)"),
    (parse_mma_model, "h100:e5m2:fp16:promote=128", "--models",
     "--models h100:e5m2:fp16:promote=128 is not allowed; allowed: promote=N with FP32 output (this model's is "
     "fp16), or promote=0 (none)"),
    (parse_mma_model, "h100:e4m3fn:promote=-1", "--models",
     "--models h100:e4m3fn:promote=-1 is not allowed; allowed: promote=N with N an integer >= 0 (0: none)"),
    (parse_configs, "fp32,bf16_mixd", "--configs",
     f"--configs bf16_mixd is not allowed (did you mean 'bf16_mixed'?); allowed: {CONFIGS_ALLOWED}"),
])
def test_a_flag_gets_its_message_in_command_line_terms(parse, text, argument, message):
    with pytest.raises(ValueError) as raised:
        parse(text, argument=argument)
    assert str(raised.value) == message
    assert not any(word in message for word in PYTHON_WORDS)


def test_python_callers_keep_python_names():
    with pytest.raises(ValueError, match=r"^biases has the value 70; allowed: None, \"all\""):
        parse_biases([3, 70])
    with pytest.raises(ValueError, match=r"^roundings has 'rne', which is not a rounding mode"):
        parse_roundings("rne")
    with pytest.raises(ValueError, match=r"^format name 'cfloat_1_4_3' is unknown"):
        parse_formats("cfloat_1_4_3")
    with pytest.raises(ValueError, match=r"^configs='bf8' is not allowed; allowed: 'all', or a list of fp32"):
        parse_configs("bf8")
    with pytest.raises(ValueError, match=r"^gpu='h10' is unknown"):
        parse_mma_model("h10:e4m3")


def test_good_flag_values_parse_as_in_python():
    assert parse_biases("9,3-5", argument="--bias") == (3, 4, 5, 9)
    assert parse_biases("AUTO", argument="--bias") == "auto"
    assert parse_roundings("stochastic,nearest_even", argument="--rounding") == ("stochastic", "nearest_even")
    assert [str(fmt) for fmt in parse_formats("fp16,cfloat8_1_4_3:bias=10,subnormals=tesla", argument="--formats")] \
        == ["fp16", "cfloat8_1_4_3(bias=10, subnormals='tesla')"]
    # NVIDIA's "e4m3" is read as e4m3fn and printed as the real name.
    assert parse_mma_model("h100:e4m3", argument="--models").name == "h100-e4m3fn-fp32"
    promoted = parse_mma_model("h100:e4m3fn:promote=128", argument="--models")
    assert promoted.promote_every == 128 and promoted.block == 32
    assert parse_configs("fp32, h100_fp8,fp32", argument="--configs") == ["fp32", "h100_fp8"]
    assert parse_configs(" ALL ", argument="--configs")[0] == "fp32"


# ---- through fmtlab.cli.main --------------------------------------------------------------------

@pytest.mark.parametrize("argv, message", [
    (["formats", "fp17"], f"fmtlab formats: error: format 'fp17' is unknown (did you mean 'fp16'?); "
                          f"allowed: {FORMATS_ALLOWED}"),
    (["formats", "cfloat_1_4_3"], f"fmtlab formats: error: format 'cfloat_1_4_3' is unknown "
                                  f"(did you mean 'cfloat8_1_4_3'?); allowed: {FORMATS_ALLOWED}"),
    (["formats", "cfloat8_1_4_3:bias=99"],
     "fmtlab formats: error: format 'cfloat8_1_4_3:bias=99' is not allowed; allowed: bias=0..63 for cfloat8_1_4_3"),
    (["formats", "fp16:bias=3"],
     "fmtlab formats: error: format 'fp16:bias=3' is not allowed; allowed: fp16 has the fixed bias 15; "
     "bias=B (0..63) only for cfloat8_1_4_3, cfloat8_1_5_2, shp"),
    (["formats", "fp16", "--values"],
     "fmtlab formats: error: --values lists every value of formats of at most 8 bits; fp16 has 16 bits"),
    (["formats", "--values"],
     "fmtlab formats: error: --values needs a format NAME of at most 8 bits, e.g. fmtlab formats e4m3fn --values"),
])
def test_formats_errors_print_nothing_but_the_error(capsys, argv, message):
    status, out, err = run_cli(capsys, *argv)
    assert (status, out, err) == (2, "", message + "\n")
    assert not any(word in err for word in PYTHON_WORDS)


def test_formats_values_of_an_8_bit_format(capsys):
    status, out, err = run_cli(capsys, "formats", "e2m1fn", "--values")
    assert status == 0 and err == ""
    # OCP MX FP4 (E2M1): 0, 0.5, 1, 1.5, 2, 3, 4, 6 and their negatives.
    assert out.endswith("\ne2m1fn: 15 distinct finite values\n-6 -4 -3 -2 -1.5 -1 -0.5 -0 0.5 1 1.5 2 3 4 6\n")
    header, rule, row = out.splitlines()[:3]
    assert header.split() == ["format", "s/e/m", "bias", "specials", "subnormals", "max", "min_normal",
                              "min_subnormal", "binades", "ml_dtype"]
    assert set(rule) == {"-", " "} and row.split()[:6] == ["e2m1fn", "1/2/1", "1", "finite", "ieee", "6"]


@pytest.mark.parametrize("argv, message", [
    (["sweep", "--formats", "int99"], "fmtlab sweep: error: --formats int99 is not allowed; allowed: intN (2..24 bits) or "
     "uintN (1..24), options symmetric=true and step_exponent=S (bits=99 is not allowed for a signed integer "
     "format: 2..24)"),
    (["formats", "int8:step=3"], "fmtlab formats: error: format 'int8:step=3' is not allowed; allowed: intN (2..24 "
     "bits) or uintN (1..24), options symmetric=true and step_exponent=S (format option 'step' is unknown for the "
     "integer format int8; allowed: symmetric, step_exponent)"),
])
def test_integer_format_errors_say_what_is_allowed(capsys, argv, message):
    status, out, err = run_cli(capsys, *argv)
    assert (status, out, err) == (2, "", message + "\n")


def test_formats_describes_integer_and_scaled_formats(capsys):
    status, out, err = run_cli(capsys, "formats", "int8:step_exponent=-6", "--values")
    assert status == 0 and err == ""
    header, _, row = out.splitlines()[:3]
    assert header.split() == ["format", "bits", "signed", "min", "max", "step", "ml_dtype"]
    assert row.split() == ["int8:step_exponent=-6", "8", "yes", "-2", "1.98438", "0.015625", "-"]
    assert "\nint8:step_exponent=-6: 256 distinct finite values\n-2 -1.98438 " in out
    status, out, err = run_cli(capsys, "formats", "nvfp4")
    assert status == 0 and err == ""
    header, _, row = out.splitlines()
    assert header.split()[:5] == ["format", "element", "scale", "block", "rule"]
    # E2M1 elements, an E4M3 scale per 16 (4 + 8/16 bits a value), an FP32 tensor scale
    assert row.split() == ["nvfp4", "e2m1fn", "e4m3fn", "16", "amax", "fp32", "4.5", "6", "0.00195..448"]
    status, out, err = run_cli(capsys, "formats")
    assert status == 0 and err == ""
    assert "\nmxint8 " in out and "\nint4 " in out and "\nfp8_block128x128 " in out
    status, out, err = run_cli(capsys, "formats", "mxfp4", "--values")
    assert (status, out) == (2, "") and "mxfp4 is a scaled format" in err


@pytest.mark.parametrize("argv, message", [
    (["sweep", "--bias", "70"], f"fmtlab sweep: error: --bias 70 is not allowed; allowed: {BIASES_ALLOWED}"),
    (["sweep", "--rounding", "rne"],
     f"fmtlab sweep: error: --rounding rne is not allowed (did you mean 'nearest_even'?); "
     f"allowed: {ROUNDINGS_ALLOWED}"),
    (["sweep", "--rounding", "nearest_even,stochastc"],
     f"fmtlab sweep: error: --rounding stochastc is not allowed (did you mean 'stochastic'?); "
     f"allowed: {ROUNDINGS_ALLOWED}"),
    (["sweep", "--formats", "cfloat_1_4_3"],
     f"fmtlab sweep: error: --formats cfloat_1_4_3 is not allowed (did you mean 'cfloat8_1_4_3'?); "
     f"allowed: {FORMATS_ALLOWED}"),
    (["sweep", "--formats", "cfloat8_1_4_3:bias=99"],
     "fmtlab sweep: error: --formats cfloat8_1_4_3:bias=99 is not allowed; allowed: bias=0..63 for cfloat8_1_4_3"),
    (["sweep-mma", "--models", "h10:e4m3"],
     f"fmtlab sweep-mma: error: --models h10:e4m3 is not allowed (did you mean 'h100:e4m3'?); "
     f"allowed: {GPUS_ALLOWED}"),
])
def test_sweep_flags_are_named_in_their_errors(capsys, tmp_path, argv, message):
    # The sweep subcommands pass their flag names to the parsers (argument="--bias", ...).
    status, out, err = run_cli(capsys, *argv, "--out", str(tmp_path / "out"))
    assert (status, err) == (2, message + "\n")
    assert not any(word in err for word in PYTHON_WORDS)


def test_drift_configs_are_named_in_their_errors(capsys, tmp_path):
    pytest.importorskip("torch")
    status, out, err = run_cli(capsys, "drift", "--configs", "fp32,bf16_mixd", "--out", str(tmp_path))
    assert (status, err) == (2, f"fmtlab drift: error: --configs bf16_mixd is not allowed "
                                f"(did you mean 'bf16_mixed'?); allowed: {CONFIGS_ALLOWED}\n")


def test_version(capsys):
    version = re.search(r'^version = "([^"]+)"', (ROOT / "pyproject.toml").read_text(), re.MULTILINE).group(1)
    assert fmtlab.__version__ == version
    assert run_cli(capsys, "--version") == (0, f"fmtlab {version}\n", "")


# ---- fmtlab mma --------------------------------------------------------------------------------

def test_mma_list_prints_the_real_format_names(capsys):
    status, out, err = run_cli(capsys, "mma", "list")
    assert status == 0 and err == ""
    names = [line.split()[0] for line in out.splitlines()[2:] if line.strip()]
    assert {"h100-e4m3fn-fp32", "b200-e4m3fn-fp16", "h100-e5m2-fp32", "ada-e4m3fn-fp32"} <= set(names)
    assert not any("-e4m3-" in name for name in names)
    assert 'NVIDIA calls e4m3fn "E4M3"' in out and "fl.E4M3FN" not in out


def test_mma_check_with_no_measured_files_is_an_error(capsys, tmp_path):
    (tmp_path / "README.md").write_text("not a measurement")
    status, out, err = run_cli(capsys, "mma", "check", "--data", str(tmp_path))
    assert (status, out) == (2, "")
    assert err == (f"fmtlab mma: error: --data {tmp_path} has no GPU-INPUT.npz files; allowed: a directory of the "
                   "measured files, such as H100-fp16.npz or B200-e4m3.npz (GPU a preset GPU name, INPUT fp16, "
                   "bf16, tf32, e4m3 or e5m2)\n")


def test_mma_check_with_a_missing_directory_names_data(capsys, tmp_path):
    status, out, err = run_cli(capsys, "mma", "check", "--data", str(tmp_path / "nowhere"))
    assert (status, out) == (2, "")
    assert err == (f"fmtlab mma: error: --data {tmp_path / 'nowhere'} is not a directory; allowed: a directory of "
                   "the measured GPU-INPUT.npz files (e.g. H100-fp16.npz), such as ../shared/tc-validation\n")


def test_mma_check_on_one_measured_file(capsys, tmp_path):
    from fmtlab.mma_validation import write_measured_files
    write_measured_files(tmp_path, ["V100-fp16"])  # the bundled data as a GPU-INPUT.npz file
    status, out, err = run_cli(capsys, "mma", "check", "--data", str(tmp_path))
    assert (status, err) == (0, "")
    rows = [line.split() for line in out.splitlines()[2:4]]
    assert rows == [["V100-fp16", "->", "fp32", "v100-fp16-fp32", "5000/5000", "ok"],
                    ["V100-fp16", "->", "fp16", "v100-fp16-fp16", "5000/5000", "ok"]]


# ---- the top-level handler ----------------------------------------------------------------------

def _formats_raising(monkeypatch, raise_it):
    import fmtlab._cli_formats

    def run(args):
        print("partial")
        raise_it()

    monkeypatch.setattr(fmtlab._cli_formats, "run", run)


def test_out_of_memory_is_one_line(capsys, monkeypatch):
    _formats_raising(monkeypatch, lambda: np.empty(1 << 50))  # 8 PiB: more than any address space
    status, out, err = run_cli(capsys, "formats")
    assert (status, out) == (2, "partial\n")
    assert err == ("fmtlab formats: error: out of memory: Unable to allocate 8.00 PiB for an array with shape "
                   "(1125899906842624,) and data type float64\n")


def test_ctrl_c_is_one_line_and_status_130(capsys, monkeypatch):
    def interrupt():
        raise KeyboardInterrupt

    _formats_raising(monkeypatch, interrupt)
    assert run_cli(capsys, "formats") == (130, "partial\n", "fmtlab formats: interrupted\n")


def test_ctrl_c_in_the_pool_says_how_much_had_finished(capsys, monkeypatch):
    from fmtlab._pool import Interrupted

    def interrupt():
        raise Interrupted([1.0, None, 2.0, None])

    _formats_raising(monkeypatch, interrupt)
    assert run_cli(capsys, "formats") == (130, "partial\n",
                                          "fmtlab formats: interrupted: 2 of 4 tasks had finished\n")


def test_a_one_line_runtime_error_is_status_1(capsys, monkeypatch):
    def fail():
        raise RuntimeError("the C core rejected the model (status -3)")

    _formats_raising(monkeypatch, fail)
    assert run_cli(capsys, "formats") == (1, "partial\n",
                                          "fmtlab formats: error: the C core rejected the model (status -3)\n")


def test_a_runtime_error_with_a_long_story_is_a_bug_and_shows_its_traceback(monkeypatch):
    def fail():
        raise RuntimeError("something inconsistent\n  details on the next line")

    _formats_raising(monkeypatch, fail)
    with pytest.raises(RuntimeError, match="something inconsistent"):
        cli.main(["formats"])
    _formats_raising(monkeypatch, lambda: (_ for _ in ()).throw(RuntimeError()))
    with pytest.raises(RuntimeError):
        cli.main(["formats"])


def test_a_dead_worker_is_one_line_and_status_1(capsys, monkeypatch):
    from fmtlab._pool import WorkerDied

    def die():
        # A multi-line message (a RuntimeError would then show its traceback) still gives one line.
        raise WorkerDied("a worker process died (killed by signal 9)\nwhile running task 3 of 10", [1.0, None])

    _formats_raising(monkeypatch, die)
    status, out, err = run_cli(capsys, "formats")
    assert (status, out) == (1, "partial\n")
    assert err == "fmtlab formats: error: a worker process died (killed by signal 9) while running task 3 of 10\n"


def test_a_closed_pipe_ends_quietly():
    process = subprocess.Popen([sys.executable, "-m", "fmtlab", "mma", "list"], cwd=ROOT,
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    process.stdout.close()  # the reader is gone before fmtlab writes (like `fmtlab mma list | head -0`)
    stderr = process.stderr.read()
    process.wait(timeout=120)
    process.stderr.close()
    assert (process.returncode, stderr) == (141, b"")


@pytest.mark.parametrize("code", [
    "import sys, fmtlab.cli\ntry:\n    fmtlab.cli.main(['--help'])\nexcept SystemExit as e:\n    assert e.code == 0\n"
    "assert 'torch' not in sys.modules, 'fmtlab --help imported torch'",
    "import sys, fmtlab.cli\nfmtlab.cli.main(['formats'])\nassert 'torch' not in sys.modules",
    "import sys, fmtlab.cli\nfmtlab.cli.build_parser()\nassert 'torch' not in sys.modules, "
    "'a subcommand module imports torch when configured'",
])
def test_help_and_formats_do_not_import_torch(code):
    completed = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert completed.returncode == 0, completed.stderr


def test_a_broken_pipe_that_is_not_stdouts_is_an_error():
    """Only a closed stdout ends quietly; a broken pipe to one of fmtlab's own processes is reported."""
    code = ("import sys, fmtlab.cli, fmtlab._cli_formats as formats\n"
            "def run(args):\n    raise BrokenPipeError(32, 'Broken pipe')\n"
            "formats.run = run\nsys.exit(fmtlab.cli.main(['formats']))\n")
    completed = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert completed.returncode == 2
    assert completed.stderr.strip() == "fmtlab formats: error: [Errno 32] Broken pipe"
