"""The built-in catalogue: service types of the seven scenarios, loaded by `run.py seed`."""

from __future__ import annotations

from service.catalog.guides import with_guide
from service.catalog.models import Choice, FormField, ServiceType


def _f(code: str, type_: str, zh: str, en: str, *, required: bool = False, **kw: object) -> FormField:
    return FormField(code=code, type=type_, label_zh=zh, label_en=en, required=required, **kw)  # type: ignore[arg-type]


def _choices(*items: tuple[str, str, str]) -> tuple[Choice, ...]:
    return tuple(Choice(code, zh, en) for code, zh, en in items)


DETAILS = _f("details", "text", "情况说明", "Details", max_length=2000)
PREFERRED_TIME = _f("preferred_time", "datetime", "期望上门时间", "Preferred time", required=True)
NAME = _f(
    "applicant_name",
    "string",
    "申请人姓名",
    "Applicant's name",
    required=True,
    max_length=50,
    personal="name",
    reporter=True,
)
APPLICANT_ID = _f(
    "applicant_id_card", "id_card", "申请人身份证号", "Applicant's ID card number", required=True, reporter=True
)
HOUSEHOLD_SIZE = _f("household_size", "number", "家庭人口数", "Household size", required=True, min=1, max=20)
MONTHLY_INCOME = _f(
    "monthly_income", "number", "家庭月收入（元）", "Household monthly income (CNY)", min=0, max=1_000_000
)
LIVING = _f(
    "living_situation",
    "single_choice",
    "居住情况",
    "Living situation",
    choices=_choices(
        ("alone", "独居", "lives alone"),
        ("empty_nest", "空巢", "empty nest"),
        ("left_behind", "留守", "left behind"),
        ("with_family", "与家人同住", "with family"),
    ),
)

SEED_SERVICES: tuple[ServiceType, ...] = (
    # ---------------------------------------------------------------- 养老 elderly care
    ServiceType(
        code="elderly_home_visit",
        version=1,
        scenario="elderly",
        name_zh="上门探访",
        name_en="Home visit request",
        description_zh="为独居、空巢、留守、失能等老年人申请社工上门探访，了解生活状况和需求。",
        description_en="Ask a social worker to visit an older person living alone or in difficulty at home.",
        fields=(
            _f(
                "elder_name", "string", "老人姓名", "Older person's name", required=True, max_length=50, personal="name"
            ),
            _f("elder_age", "number", "老人年龄", "Age", required=True, min=60, max=130),
            LIVING,
            DETAILS,
        ),
        address_required=True,
        capability="elderly_care",
        sign_within_hours=8,
        resolve_within_days=5,
    ),
    ServiceType(
        code="elderly_home_care",
        version=1,
        scenario="elderly",
        name_zh="居家上门服务",
        name_en="Home care service",
        description_zh="预约助餐、保洁、助浴、陪同就医等居家养老上门服务。",
        description_en="Book meals, cleaning, bathing help or a medical escort at home.",
        fields=(
            _f(
                "care_items",
                "multi_choice",
                "服务项目",
                "Services needed",
                required=True,
                choices=_choices(
                    ("meals", "助餐", "meals"),
                    ("cleaning", "保洁", "cleaning"),
                    ("bathing", "助浴", "bathing"),
                    ("medical_escort", "陪同就医", "medical escort"),
                ),
            ),
            PREFERRED_TIME,
            DETAILS,
        ),
        address_required=True,
        capability="elderly_care",
        booking=True,
        sign_within_hours=8,
        resolve_within_days=5,
    ),
    ServiceType(
        code="elderly_emergency",
        version=1,
        scenario="elderly",
        name_zh="紧急求助",
        name_en="Emergency help",
        description_zh="老人遇到跌倒、突发疾病、断水断电等紧急情况时求助，社工站立即响应；危及生命请先拨打120/110。",
        description_en="Urgent help for an older person (a fall, sudden illness, no water or power). "
        "If life is at risk call 120/110 first.",
        fields=(
            _f(
                "emergency_type",
                "single_choice",
                "紧急情况",
                "What happened",
                required=True,
                choices=_choices(
                    ("fall", "跌倒", "fall"),
                    ("illness", "突发疾病", "sudden illness"),
                    ("utilities", "断水断电", "no water or power"),
                    ("missing", "走失", "missing person"),
                    ("other", "其他", "other"),
                ),
            ),
            DETAILS,
        ),
        address_required=True,
        capability="elderly_care",
        urgent=True,
        clock="calendar",
        sign_within_hours=1,
        resolve_within_days=1,
    ),
    ServiceType(
        code="elderly_age_allowance",
        version=1,
        scenario="elderly",
        name_zh="高龄津贴申领",
        name_en="Old-age allowance application",
        description_zh="80周岁及以上户籍老年人申领高龄津贴。",
        description_en="Apply for the old-age allowance for residents aged 80 and over.",
        fields=(
            _f(
                "elder_name", "string", "老人姓名", "Older person's name", required=True, max_length=50, personal="name"
            ),
            _f("id_card", "id_card", "老人身份证号", "Older person's ID card number", required=True),
            _f("birth_date", "date", "出生日期", "Date of birth", required=True),
            _f("bank_account", "string", "社保卡或银行账号", "Social security card or bank account", max_length=40),
        ),
        capability="elderly_care",
        sign_within_hours=16,
        resolve_within_days=15,
    ),
    # ---------------------------------------------------------------- 儿童 children
    ServiceType(
        code="child_protection_report",
        version=1,
        scenario="children",
        name_zh="未成年人保护线索",
        name_en="Child-protection report",
        description_zh="报告未成年人遭受侵害、虐待、遗弃或监护缺失的线索。可匿名，举报人信息保密。",
        description_en="Report a child who is abused, neglected, abandoned or without care. "
        "Anonymous reports are accepted and the reporter is kept confidential.",
        fields=(
            _f(
                "concern",
                "single_choice",
                "线索类型",
                "Concern",
                required=True,
                choices=_choices(
                    ("abuse", "遭受虐待或侵害", "abuse"),
                    ("neglect", "监护缺失或疏于照料", "neglect"),
                    ("abandonment", "遗弃", "abandonment"),
                    ("dropout", "失学辍学", "out of school"),
                    ("other", "其他", "other"),
                ),
            ),
            _f("child_age", "number", "儿童年龄（估计）", "Child's age (estimate)", min=0, max=17),
            _f("where", "string", "发现地点", "Where", required=True, max_length=200, personal="address"),
            _f("details", "text", "具体情况", "What you saw", required=True, max_length=4000),
            _f("reporter_phone", "phone", "举报人电话（可不填）", "Your phone (optional)"),
        ),
        capability="child_protection",
        confidential=True,
        allows_anonymous=True,
        urgent=True,
        clock="calendar",
        sign_within_hours=2,
        resolve_within_days=3,
    ),
    ServiceType(
        code="child_unsupported_support",
        version=1,
        scenario="children",
        name_zh="事实无人抚养儿童保障",
        name_en="Support for de-facto unsupported children",
        description_zh="父母双方均符合重残、重病、服刑、失联等情形的儿童，申请纳入基本生活保障。",
        description_en="Apply for basic living support for a child whose parents cannot care for them.",
        fields=(
            _f("child_name", "string", "儿童姓名", "Child's name", required=True, max_length=50, personal="name"),
            _f("child_id_card", "id_card", "儿童身份证号", "Child's ID card number", required=True),
            _f(
                "parent_situation",
                "multi_choice",
                "父母情况",
                "Parents' situation",
                required=True,
                choices=_choices(
                    ("severe_disability", "重残", "severe disability"),
                    ("serious_illness", "重病", "serious illness"),
                    ("imprisoned", "服刑在押", "imprisoned"),
                    ("missing", "失联", "missing"),
                    ("deceased", "死亡", "deceased"),
                ),
            ),
            _f(
                "guardian_name",
                "string",
                "实际监护人姓名",
                "Guardian's name",
                required=True,
                max_length=50,
                personal="name",
                reporter=True,
            ),
        ),
        capability="child_protection",
        confidential=True,
        sign_within_hours=16,
        resolve_within_days=20,
    ),
    ServiceType(
        code="child_counselling",
        version=1,
        scenario="children",
        name_zh="心理疏导预约",
        name_en="Counselling appointment",
        description_zh="为困境儿童、留守儿童预约心理疏导服务。",
        description_en="Book counselling for a child in difficulty or left behind.",
        fields=(
            _f("child_age", "number", "儿童年龄", "Child's age", required=True, min=3, max=17),
            PREFERRED_TIME,
            _f(
                "mode",
                "single_choice",
                "方式",
                "Mode",
                required=True,
                choices=_choices(
                    ("in_person", "到站面谈", "at the station"),
                    ("home", "上门", "at home"),
                    ("video", "视频", "video call"),
                ),
            ),
            DETAILS,
        ),
        capability="child_protection",
        booking=True,
        confidential=True,
        sign_within_hours=8,
        resolve_within_days=10,
    ),
    # ---------------------------------------------------------------- 社区 community
    ServiceType(
        code="community_service_request",
        version=1,
        scenario="community",
        name_zh="社区服务诉求",
        name_en="Community service request",
        description_zh="向所在社区反映公共设施、环境卫生、便民服务等方面的诉求。",
        description_en="Raise a request about public facilities, sanitation or local services.",
        fields=(
            _f(
                "topic",
                "single_choice",
                "诉求类别",
                "Topic",
                required=True,
                choices=_choices(
                    ("facilities", "公共设施", "public facilities"),
                    ("sanitation", "环境卫生", "sanitation"),
                    ("services", "便民服务", "local services"),
                    ("other", "其他", "other"),
                ),
            ),
            _f("details", "text", "诉求内容", "Request", required=True, max_length=2000),
        ),
        address_required=True,
        capability="community",
        sign_within_hours=8,
        resolve_within_days=10,
    ),
    ServiceType(
        code="neighbourhood_mediation",
        version=1,
        scenario="community",
        name_zh="邻里调解",
        name_en="Neighbourhood mediation",
        description_zh="邻里之间因噪音、漏水、占道等产生纠纷，申请社区调解。",
        description_en="Ask for mediation in a dispute with neighbours (noise, leaks, blocked access).",
        fields=(
            _f(
                "other_party", "string", "对方住址或称呼", "Other party", required=True, max_length=100, personal="name"
            ),
            _f("dispute", "text", "纠纷情况", "The dispute", required=True, max_length=2000),
        ),
        capability="community",
        sign_within_hours=16,
        resolve_within_days=15,
    ),
    ServiceType(
        code="facility_booking",
        version=1,
        scenario="community",
        name_zh="场地预约",
        name_en="Community facility booking",
        description_zh="预约社区活动室、日间照料中心等公共场地。",
        description_en="Book a community room or day-care centre space.",
        fields=(
            _f(
                "facility",
                "single_choice",
                "场地",
                "Facility",
                required=True,
                choices=_choices(
                    ("activity_room", "活动室", "activity room"),
                    ("meeting_room", "会议室", "meeting room"),
                    ("day_care", "日间照料中心", "day-care centre"),
                ),
            ),
            _f("start_time", "datetime", "开始时间", "Start", required=True),
            _f("hours", "number", "时长（小时）", "Hours", required=True, min=1, max=8),
            _f("attendees", "number", "人数", "Attendees", required=True, min=1, max=200),
        ),
        capability="community",
        booking=True,
        sign_within_hours=8,
        resolve_within_days=3,
    ),
    # ---------------------------------------------------------------- 社会救助 social assistance
    ServiceType(
        code="dibao_application",
        version=1,
        scenario="social_aid",
        name_zh="最低生活保障申请",
        name_en="Minimum living allowance (dibao) application",
        description_zh="家庭人均收入低于当地低保标准且符合财产规定的，申请城乡最低生活保障。",
        description_en="Apply for the minimum living allowance when household income is below the local line.",
        fields=(NAME, APPLICANT_ID, HOUSEHOLD_SIZE, MONTHLY_INCOME, DETAILS),
        address_required=True,
        capability="social_aid",
        sign_within_hours=16,
        resolve_within_days=30,
    ),
    ServiceType(
        code="temporary_assistance",
        version=1,
        scenario="social_aid",
        name_zh="临时救助申请",
        name_en="Temporary assistance",
        description_zh="因火灾、交通事故、突发重病等导致基本生活暂时困难的家庭或个人申请临时救助。",
        description_en="Emergency support after a fire, accident or sudden illness leaves a household in hardship.",
        fields=(
            NAME,
            APPLICANT_ID,
            _f(
                "cause",
                "single_choice",
                "困难原因",
                "Cause",
                required=True,
                choices=_choices(
                    ("fire", "火灾", "fire"),
                    ("accident", "交通事故等意外", "accident"),
                    ("illness", "突发重病", "sudden illness"),
                    ("other", "其他", "other"),
                ),
            ),
            HOUSEHOLD_SIZE,
            DETAILS,
        ),
        capability="social_aid",
        urgent=True,
        sign_within_hours=4,
        resolve_within_days=5,
    ),
    ServiceType(
        code="extreme_poverty_support",
        version=1,
        scenario="social_aid",
        name_zh="特困人员供养申请",
        name_en="Extreme-poverty support application",
        description_zh="无劳动能力、无生活来源、无法定赡养抚养扶养义务人的老年人、残疾人和未成年人申请特困供养。",
        description_en="Support for people unable to work, without income and without family obliged to support them.",
        fields=(
            NAME,
            APPLICANT_ID,
            _f(
                "care_mode",
                "single_choice",
                "供养方式",
                "Care arrangement",
                required=True,
                choices=_choices(
                    ("at_home", "分散供养（居家）", "at home"), ("institution", "集中供养（敬老院）", "in a care home")
                ),
            ),
        ),
        address_required=True,
        capability="social_aid",
        sign_within_hours=16,
        resolve_within_days=20,
    ),
    # ---------------------------------------------------------------- 社会组织 social organizations
    ServiceType(
        code="org_registration_consult",
        version=1,
        scenario="social_org",
        name_zh="社会组织登记咨询",
        name_en="Social organization registration consultation",
        description_zh="咨询社会团体、民办非企业单位、基金会的成立登记和年检事项。",
        description_en="Ask about registering or the annual inspection of a social organization.",
        fields=(
            _f(
                "org_type",
                "single_choice",
                "组织类型",
                "Organization type",
                required=True,
                choices=_choices(
                    ("association", "社会团体", "association"),
                    ("private_non_enterprise", "民办非企业单位", "private non-enterprise unit"),
                    ("foundation", "基金会", "foundation"),
                ),
            ),
            _f("question", "text", "咨询内容", "Question", required=True, max_length=2000),
        ),
        capability="social_org",
        sign_within_hours=16,
        resolve_within_days=5,
    ),
    ServiceType(
        code="org_complaint",
        version=1,
        scenario="social_org",
        name_zh="社会组织投诉举报",
        name_en="Complaint about a social organization",
        description_zh="举报社会组织违规收费、非法募捐、以社会组织名义从事非法活动等行为。",
        description_en="Report a social organization for illegal fees, fundraising or other misconduct.",
        fields=(
            _f("org_name", "string", "组织名称", "Organization", required=True, max_length=100),
            _f("details", "text", "投诉内容", "Complaint", required=True, max_length=4000),
            _f("reporter_phone", "phone", "联系电话（可不填）", "Your phone (optional)"),
        ),
        capability="social_org",
        allows_anonymous=True,
        sign_within_hours=16,
        resolve_within_days=15,
    ),
    # ---------------------------------------------------------------- 专业社会工作 social work
    ServiceType(
        code="social_worker_booking",
        version=1,
        scenario="social_work",
        name_zh="社工服务预约",
        name_en="Book a social worker",
        description_zh="预约社工提供个案辅导、家庭关系调适、资源链接等专业服务。",
        description_en="Book a social worker for casework, family support or help finding services.",
        fields=(
            _f(
                "need",
                "single_choice",
                "服务需求",
                "Need",
                required=True,
                choices=_choices(
                    ("casework", "个案辅导", "casework"),
                    ("family", "家庭关系调适", "family relations"),
                    ("resources", "资源链接", "finding services"),
                    ("other", "其他", "other"),
                ),
            ),
            PREFERRED_TIME,
            DETAILS,
        ),
        capability="social_work",
        booking=True,
        sign_within_hours=8,
        resolve_within_days=10,
    ),
    # ---------------------------------------------------------------- 殡葬 funeral services
    ServiceType(
        code="funeral_service_booking",
        version=1,
        scenario="funeral",
        name_zh="殡仪服务预约",
        name_en="Funeral service booking",
        description_zh="预约遗体接运、告别仪式、火化等殡仪服务。",
        description_en="Book body transport, a farewell ceremony or cremation.",
        fields=(
            _f(
                "deceased_name",
                "string",
                "逝者姓名",
                "Name of the deceased",
                required=True,
                max_length=50,
                personal="name",
            ),
            _f("date_of_death", "date", "逝世日期", "Date of death", required=True),
            _f(
                "services",
                "multi_choice",
                "服务项目",
                "Services",
                required=True,
                choices=_choices(
                    ("transport", "遗体接运", "body transport"),
                    ("farewell", "告别仪式", "farewell ceremony"),
                    ("cremation", "火化", "cremation"),
                ),
            ),
            _f("pickup_time", "datetime", "接运时间", "Pick-up time", required=True),
        ),
        address_required=True,
        capability="funeral",
        booking=True,
        urgent=True,
        sign_within_hours=2,
        resolve_within_days=3,
    ),
    ServiceType(
        code="funeral_subsidy",
        version=1,
        scenario="funeral",
        name_zh="惠民殡葬补贴申领",
        name_en="Funeral subsidy application",
        description_zh="户籍居民去世后，家属申领基本殡葬服务费用减免或补贴。",
        description_en="Relatives of a deceased resident apply for the basic funeral cost subsidy.",
        fields=(
            _f(
                "deceased_name",
                "string",
                "逝者姓名",
                "Name of the deceased",
                required=True,
                max_length=50,
                personal="name",
            ),
            _f("deceased_id_card", "id_card", "逝者身份证号", "ID card number of the deceased", required=True),
            _f("date_of_death", "date", "逝世日期", "Date of death", required=True),
            _f(
                "applicant_name",
                "string",
                "申请人（家属）姓名",
                "Applicant (relative)",
                required=True,
                max_length=50,
                personal="name",
                reporter=True,
            ),
        ),
        capability="funeral",
        sign_within_hours=16,
        resolve_within_days=15,
    ),
    ServiceType(
        code="eco_burial_registration",
        version=1,
        scenario="funeral",
        name_zh="生态安葬登记",
        name_en="Eco-burial registration",
        description_zh="登记树葬、花葬、草坪葬、海葬等节地生态安葬，可申领奖补。",
        description_en="Register a tree, flower, lawn or sea burial; a reward may be paid.",
        fields=(
            _f(
                "deceased_name",
                "string",
                "逝者姓名",
                "Name of the deceased",
                required=True,
                max_length=50,
                personal="name",
            ),
            _f(
                "burial_type",
                "single_choice",
                "安葬方式",
                "Burial type",
                required=True,
                choices=_choices(
                    ("tree", "树葬", "tree burial"),
                    ("flower", "花葬", "flower burial"),
                    ("lawn", "草坪葬", "lawn burial"),
                    ("sea", "海葬", "sea burial"),
                ),
            ),
            _f("planned_date", "date", "计划安葬日期", "Planned date", required=True),
        ),
        capability="funeral",
        booking=True,
        sign_within_hours=16,
        resolve_within_days=10,
    ),
)

# Every built-in carries its service-page texts (conditions, materials, time limits, icon).
SEED_SERVICES = tuple(with_guide(s) for s in SEED_SERVICES)

# Built-ins of earlier releases that the seed now retires where they are stored: the volunteer
# service (docs/volunteers.md) replaced both, since there the organiser records the hours instead
# of the applicant typing them. Retired services stay readable, so cases filed with them still show.
RETIRED_BUILT_INS: tuple[str, ...] = ("volunteer_certificate", "volunteer_project_enrolment")
