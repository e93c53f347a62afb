"""The certificate of volunteer service records (志愿服务记录证明) as a PDF.

Chinese text is set in Noto Sans SC (SIL Open Font License 1.1), shipped as a wheel by the
PyPI package ``pylopdf-fonts-zh-cn`` (pinned in requirements.txt, so ``make run`` installs
it on a fresh machine); fpdf2 embeds the subset of the glyphs used, so the PDF renders the
same everywhere. The fields follow 《志愿服务记录与证明出具办法（试行）》: the volunteer's
basic information, the services (activity, content, place, time, hours), training, awards
and evaluations, the issuing organisation, the date, a unique number, and a verification
code with a QR code pointing at the public verify page.
"""

from __future__ import annotations

import io
from datetime import datetime
from functools import lru_cache
from pathlib import Path
from zoneinfo import ZoneInfo

import segno
from fpdf import FPDF

from service.volunteers.models import Certificate
from service.volunteers.rules import format_hours

LOCAL = ZoneInfo("Asia/Shanghai")
FONT = "NotoSansSC"
RECORD_LABELS = {"training": "培训", "award": "表彰奖励", "evaluation": "评价"}
MAX_LINES = 40  # services listed one per row; beyond that the total still covers every one


@lru_cache(maxsize=1)
def font_path() -> Path:
    """The CJK font file, from the pinned font package."""
    import pylopdf_fonts_zh_cn

    path = Path(pylopdf_fonts_zh_cn.sans_path())
    if not path.is_file():  # pragma: no cover - a broken install
        raise RuntimeError(f"the CJK font is missing at {path}; reinstall requirements.txt")
    return path


def _local(value: datetime) -> str:
    return value.astimezone(LOCAL).strftime("%Y-%m-%d %H:%M")


def _qr_png(url: str) -> io.BytesIO:
    buf = io.BytesIO()
    segno.make(url, error="m").save(buf, kind="png", scale=6, border=2)
    buf.seek(0)
    return buf


def render_certificate(certificate: Certificate, verify_url: str) -> bytes:
    """The certificate's PDF bytes (A4, one or more pages)."""
    pdf = FPDF(format="A4")
    pdf.set_title(f"志愿服务记录证明 {certificate.number}")
    pdf.set_author(certificate.organisation)
    pdf.set_creator("Huimin 惠民")
    pdf.add_font(FONT, "", str(font_path()))
    pdf.set_auto_page_break(auto=True, margin=18)
    pdf.add_page()
    pdf.image(_qr_png(verify_url), x=160, y=12, w=36)
    pdf.set_font(FONT, size=20)
    pdf.set_y(22)
    pdf.cell(0, 12, "志愿服务记录证明", align="C", new_x="LMARGIN", new_y="NEXT")
    pdf.set_font(FONT, size=9)
    pdf.cell(0, 6, "Certificate of Volunteer Service Records", align="C", new_x="LMARGIN", new_y="NEXT")
    pdf.ln(8)
    pdf.set_font(FONT, size=11)
    rows = (
        ("证明编号 Number", certificate.number),
        ("验证码 Verification code", certificate.verification_code),
        ("志愿者姓名 Name", certificate.volunteer_name),
        ("身份证号 ID number", certificate.id_card_masked),
        ("服务期间 Period", f"{certificate.period_from} 至 {certificate.period_to}"),
        ("服务时长合计 Total hours", f"{format_hours(certificate.total_hours)} 小时"),
        ("出具单位 Issued by", certificate.organisation),
        ("出具日期 Date", certificate.issued_at.astimezone(LOCAL).strftime("%Y-%m-%d")),
    )
    for label, value in rows:
        pdf.cell(62, 8, label)
        pdf.multi_cell(0, 8, value, new_x="LMARGIN", new_y="NEXT")
    pdf.ln(4)
    pdf.set_font(FONT, size=12)
    pdf.cell(0, 8, "服务记录 Services", new_x="LMARGIN", new_y="NEXT")
    pdf.set_font(FONT, size=9)
    widths = (40, 52, 48, 36, 14)
    for head, w in zip(
        ("服务项目 Activity", "服务内容 Content", "服务地点 Place", "服务时间 Time", "时长 h"), widths, strict=True
    ):
        pdf.cell(w, 7, head, border=1)
    pdf.ln()
    for line in certificate.services[:MAX_LINES]:
        cells = (
            line.title[:24],
            line.content[:30],
            line.place[:28],
            f"{_local(line.start_at)}",
            format_hours(line.hours),
        )
        for text, w in zip(cells, widths, strict=True):
            pdf.cell(w, 7, text, border=1)
        pdf.ln()
    if len(certificate.services) > MAX_LINES:
        pdf.cell(
            0,
            7,
            f"另有 {len(certificate.services) - MAX_LINES} 条记录，已计入合计 (more records, counted in the total)",
        )
        pdf.ln()
    if certificate.records:
        pdf.ln(4)
        pdf.set_font(FONT, size=12)
        pdf.cell(0, 8, "培训、表彰奖励与评价 Training, awards and evaluations", new_x="LMARGIN", new_y="NEXT")
        pdf.set_font(FONT, size=9)
        for entry in certificate.records:
            label = RECORD_LABELS.get(entry.kind, entry.kind)
            pdf.multi_cell(0, 6, f"{entry.on} {label}：{entry.text}", new_x="LMARGIN", new_y="NEXT")
    pdf.ln(6)
    pdf.set_font(FONT, size=9)
    pdf.multi_cell(
        0,
        5,
        "本证明依据《志愿服务记录与证明出具办法（试行）》（民政部令第67号）出具，记录由组织方据实记录，"
        "无偿出具。扫描右上角二维码或访问以下地址核验真伪：\n"
        "Issued free of charge under MCA Order No. 67 from the records kept by the organiser. "
        "Verify it with the QR code or at:\n" + verify_url,
        new_x="LMARGIN",
        new_y="NEXT",
    )
    return bytes(pdf.output())
