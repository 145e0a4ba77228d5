"""CRC-16/ARC, as the LAME tag uses it for the Info frame and the audio ("music CRC"), with the
algebra that joins the CRCs of two byte runs without reading them again."""

import math

import numpy as np

_ORDER = 32767  # x^32767 = 1 modulo CRC-16's 0x18005 = (x + 1)(x^15 + x + 1)
_POLY = 0x18005


def _crc_table() -> list[int]:
    table = []
    for byte in range(256):
        crc = byte
        for _ in range(8):
            crc = (crc >> 1) ^ 0xA001 if crc & 1 else crc >> 1
        table.append(crc)
    return table


_TABLE = _crc_table()


def crc16(data: bytes, crc: int = 0) -> int:
    """CRC-16/ARC (polynomial 0x8005, reflected, init 0), as MP3 LAME tags use; ``crc`` continues
    an earlier run."""
    table = _TABLE
    for byte in data:
        crc = (crc >> 8) ^ table[(crc ^ byte) & 0xFF]
    return crc


def crc16_shift(crc: int, count: int) -> int:
    """The CRC-16/ARC register after ``count`` more zero bytes (``count`` < 0: before).

    With init 0 and no final xor, ``crc(a + b) == crc16_shift(crc(a), len(b)) ^ crc(b)``: in
    the bit-reversed (normal) form the register is multiplied by x^(8 * count) modulo 0x18005.
    """
    power = _power_of_x(8 * count % _ORDER)
    return _reverse16(_multiply(_reverse16(crc), power))


def _reverse16(value: int) -> int:
    return int(f"{value:016b}"[::-1], 2)


def _multiply(a: int, b: int) -> int:
    """a * b in GF(2)[x] modulo the CRC-16 polynomial."""
    product = 0
    while b:
        if b & 1:
            product ^= a
        b >>= 1
        a <<= 1
        if a & 0x10000:
            a ^= _POLY
    return product


def _power_of_x(exponent: int) -> int:
    result, base = 1, 2
    while exponent:
        if exponent & 1:
            result = _multiply(result, base)
        base = _multiply(base, base)
        exponent >>= 1
    return result


def crc16_of_large(data: bytes | memoryview, crc: int = 0) -> int:
    """``crc16(data, crc)`` for megabytes: the data as a square of rows whose CRCs advance
    together, one numpy step per byte column, then chained with ``crc16_shift`` (CRCs of byte
    runs combine linearly). Holds about three copies of ``data``: feed it a few MiB at a time."""
    columns = max(64, math.isqrt(len(data)))
    rows = len(data) // columns
    if rows < 64:
        return crc16(bytes(data), crc)
    table = np.array(_TABLE, dtype=np.uint16)
    square = np.frombuffer(data, dtype=np.uint8, count=rows * columns).reshape(rows, columns)
    registers = np.zeros(rows, dtype=np.uint16)
    for column in np.ascontiguousarray(square.T).astype(np.uint16):
        registers = (registers >> 8) ^ table[(registers ^ column) & 0xFF]
    power = _power_of_x(8 * columns % _ORDER)
    for register in registers.tolist():
        crc = _reverse16(_multiply(_reverse16(crc), power)) ^ register
    tail = bytes(data[rows * columns :])
    return crc16_shift(crc, len(tail)) ^ crc16(tail)
