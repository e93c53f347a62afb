"""What a resident reads before filing: who may apply, what to prepare, how long it takes, an icon.

Kept apart from the form definitions (catalog_seed) so the texts can be edited without touching
the forms. ``with_guide`` puts them on a built-in service type; the time-limit text is written
from the service's own limits when no text is given, so the two never disagree.
"""

from __future__ import annotations

import dataclasses
from typing import NamedTuple

from service.catalog.models import FormField, ServiceType


class Guide(NamedTuple):
    icon: str
    conditions_zh: str
    conditions_en: str
    materials_zh: tuple[str, ...]
    materials_en: tuple[str, ...]


ID_ZH, ID_EN = "申请人身份证", "the applicant's ID card"
HUKOU_ZH, HUKOU_EN = "户口簿", "the household register (户口簿)"

GUIDES: dict[str, Guide] = {
    "elderly_home_visit": Guide(
        "home-visit",
        "本地 60 岁以上独居、空巢、留守、失能或生活困难的老人，本人或家属、邻居都可以申请。",
        "People over 60 living alone, left behind, disabled or in difficulty; they, family or neighbours may ask.",
        ("老人的姓名、年龄和住址", "联系人电话"),
        ("the older person's name, age and address", "a contact phone number"),
    ),
    "elderly_home_care": Guide(
        "home-care",
        "本地 60 岁以上需要助餐、保洁、助浴或陪同就医的老人。",
        "People over 60 who need meals, cleaning, bathing help or a medical escort.",
        ("老人的住址", "方便上门的时间"),
        ("the older person's address", "a convenient time for the visit"),
    ),
    "elderly_emergency": Guide(
        "emergency",
        "老人跌倒、突发疾病、断水断电等紧急情况。危及生命请先拨打 120 或 110。",
        "Falls, sudden illness, loss of water or power. If life is in danger call 120 or 110 first.",
        ("老人所在位置", "现在的情况"),
        ("where the older person is", "what is happening"),
    ),
    "elderly_age_allowance": Guide(
        "allowance",
        "本地户籍、年满 80 周岁的老人。",
        "Residents registered here aged 80 or over.",
        ("老人身份证", HUKOU_ZH, "社保卡或银行卡"),
        ("the older person's ID card", HUKOU_EN, "a social security or bank card"),
    ),
    "child_protection_report": Guide(
        "child-protect",
        "任何人发现未成年人受到侵害、虐待、遗弃或无人照看，都可以报告；可以不留姓名，信息保密。",
        "Anyone who sees a child harmed, abused, abandoned or left alone may report, anonymously if they wish.",
        ("发现的地点和时间", "看到的情况"),
        ("where and when", "what you saw"),
    ),
    "child_unsupported_support": Guide(
        "child-care",
        "父母双方都属于重残、重病、服刑、失联等情形，无人抚养的儿童。",
        "Children whose parents are both severely disabled, ill, in prison or missing.",
        ("儿童身份证或户口簿", "父母情况的证明（如残疾证、病历、判决书）", "监护人身份证"),
        ("the child's ID card or household register", "proof of the parents' situation", "the guardian's ID card"),
    ),
    "child_counselling": Guide(
        "counselling",
        "3 到 17 岁的困境儿童、留守儿童，由监护人预约。",
        "Children aged 3 to 17 in difficulty or left behind, booked by a guardian.",
        ("儿童年龄和主要困扰", "方便的时间"),
        ("the child's age and main worry", "a convenient time"),
    ),
    "community_service_request": Guide(
        "community",
        "本社区居民，反映公共设施、环境卫生、便民服务的问题。",
        "Residents of the community, about facilities, cleanliness or local services.",
        ("问题所在的位置", "现场照片（可选）"),
        ("where the problem is", "photos (optional)"),
    ),
    "neighbourhood_mediation": Guide(
        "mediation",
        "因噪音、漏水、占道等与邻居发生纠纷的居民。",
        "Residents in a dispute with neighbours over noise, leaks, blocked paths and the like.",
        ("纠纷的经过", "对方的大致住址"),
        ("what happened", "roughly where the other party lives"),
    ),
    "facility_booking": Guide(
        "facility",
        "本社区居民或组织，预约活动室、日间照料中心等场地。",
        "Residents or groups of the community booking a room or day-care centre.",
        ("活动内容", "开始时间、时长和人数"),
        ("what the activity is", "start time, length and number of people"),
    ),
    "dibao_application": Guide(
        "dibao",
        "本地户籍，家庭人均收入低于当地低保标准，且家庭财产符合规定。",
        "Registered here, household income per person below the local minimum, and assets within the rules.",
        (ID_ZH, HUKOU_ZH, "家庭收入情况（工资、养老金等）", "家庭财产情况（住房、车辆、存款）"),
        (ID_EN, HUKOU_EN, "household income (wages, pensions)", "household assets (home, vehicle, savings)"),
    ),
    "temporary_assistance": Guide(
        "relief",
        "因火灾、交通事故、突发重病等，基本生活暂时困难的家庭或个人。",
        "Families or people in sudden hardship after a fire, accident or serious illness.",
        (ID_ZH, "困难原因的证明（如病历、事故证明）", "现场照片（可选）"),
        (ID_EN, "proof of the cause (medical record, accident report)", "photos (optional)"),
    ),
    "extreme_poverty_support": Guide(
        "support",
        "无劳动能力、无生活来源、无法定赡养抚养扶养义务人的老人、残疾人和未成年人。",
        "Older, disabled or young people with no ability to work, no income and no one obliged to support them.",
        (ID_ZH, HUKOU_ZH, "残疾证或病历（如有）"),
        (ID_EN, HUKOU_EN, "disability card or medical record, if any"),
    ),
    "org_registration_consult": Guide(
        "org",
        "打算成立社会团体、民办非企业单位或基金会，或办理年检的个人和组织。",
        "People and groups planning to register an association, non-profit or foundation, or due for inspection.",
        ("组织名称和类型", "想咨询的问题"),
        ("the organization's name and kind", "your question"),
    ),
    "org_complaint": Guide(
        "complaint",
        "任何人发现社会组织违规收费、非法募捐等，都可以投诉；可以不留电话。",
        "Anyone who sees an organization charge wrongly or raise funds illegally; a phone number is optional.",
        ("组织名称", "具体情况", "照片或凭证（可选）"),
        ("the organization's name", "what happened", "photos or receipts (optional)"),
    ),
    "social_worker_booking": Guide(
        "social-work",
        "需要个案辅导、家庭关系调适或资源链接的居民。",
        "Residents who need counselling, help with family relations or links to services.",
        ("想得到的帮助", "方便的时间"),
        ("what help you need", "a convenient time"),
    ),
    "funeral_service_booking": Guide(
        "funeral",
        "逝者家属或受委托人。",
        "Family of the deceased or someone acting for them.",
        ("逝者身份证", "死亡证明", "经办人身份证"),
        ("the deceased's ID card", "the death certificate", "your ID card"),
    ),
    "funeral_subsidy": Guide(
        "subsidy",
        "本地户籍居民去世后，由家属申领。",
        "Family of a resident registered here who has died.",
        ("逝者身份证", "死亡证明", "火化证明", "申领人身份证和银行卡"),
        ("the deceased's ID card", "the death certificate", "the cremation certificate", "your ID and bank card"),
    ),
    "eco_burial_registration": Guide(
        "eco-burial",
        "选择树葬、花葬、草坪葬、海葬等节地生态安葬的逝者家属。",
        "Families choosing tree, flower, lawn or sea burial.",
        ("逝者身份证", "火化证明", "经办人身份证"),
        ("the deceased's ID card", "the cremation certificate", "your ID card"),
    ),
}

# Plain hints under the questions most forms ask.
FIELD_HELP: dict[str, tuple[str, str]] = {
    "applicant_id_card": ("18 位，最后一位可能是 X", "18 characters; the last may be X"),
    "applicant_name": ("和身份证上的一样", "As on the ID card"),
    "household_size": ("户口簿上的人数", "People on the household register"),
    "monthly_income": ("全家每月收入合计，单位：元", "The whole household's monthly income, in yuan"),
    "details": ("用几句话说清楚就行", "A few sentences are enough"),
    "reporter_phone": ("可以不填；填了方便我们联系您", "Optional; it helps us reach you"),
}


def time_limit_texts(service: ServiceType) -> tuple[str, str]:
    """How long handling takes, in plain words, from the service's own limits."""
    if service.clock == "calendar":
        return (
            f"{service.sign_within_hours} 小时内响应，{service.resolve_within_days} 天内办结（节假日照常）",
            f"Answered within {service.sign_within_hours} h, done within {service.resolve_within_days} days, "
            "holidays included",
        )
    return (
        f"{service.sign_within_hours} 个工作小时内受理，{service.resolve_within_days} 个工作日内办结",
        f"Taken up within {service.sign_within_hours} working hours, done within "
        f"{service.resolve_within_days} working days",
    )


def _with_help(f: FormField) -> FormField:
    help_ = FIELD_HELP.get(f.code)
    if help_ is None or f.help_zh:
        return f
    return dataclasses.replace(f, help_zh=help_[0], help_en=help_[1])


def with_guide(service: ServiceType) -> ServiceType:
    """The service with its guide texts, icon, time-limit text and field hints filled in."""
    guide = GUIDES[service.code]
    zh, en = time_limit_texts(service)
    return dataclasses.replace(
        service,
        icon=guide.icon,
        conditions_zh=guide.conditions_zh,
        conditions_en=guide.conditions_en,
        materials_zh=guide.materials_zh,
        materials_en=guide.materials_en,
        time_limit_zh=zh,
        time_limit_en=en,
        fields=tuple(_with_help(f) for f in service.fields),
    )
