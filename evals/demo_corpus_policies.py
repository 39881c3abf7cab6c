"""Employee policies of the fictitious Nordbank AG, part one: people, conduct and travel.

Every section carries concrete numbers so demo questions have one precise answer.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from sovra.evals.demo_corpus_render import Section

EMPLOYEES = "group:employees"
EVERYONE = "group:everyone"


@dataclass(frozen=True)
class Policy:
    slug: str
    title: str
    fmt: Literal["html", "docx"]
    acl: tuple[str, ...]
    modified: str  # ISO 8601 UTC, as SharePoint reports lastModifiedDateTime
    version: int
    owner: str
    sections: tuple[Section, ...]

    @property
    def filename(self) -> str:
        return f"{self.slug}.{self.fmt}"


def S(heading: str, *blocks: str) -> Section:
    return Section(heading, blocks)


PEOPLE_POLICIES: tuple[Policy, ...] = (
    Policy(
        "remote-work-policy",
        "Remote Work Policy",
        "html",
        (EMPLOYEES,),
        "2025-03-01T09:00:00Z",
        3,
        "Chief People Officer",
        (
            S(
                "1. Purpose and scope",
                "This policy sets out when and how employees of Nordbank AG may work away from a "
                "Nordbank office. It applies to all permanent and fixed-term employees in Germany, "
                "the Netherlands and Austria. Trainees in their first 3 months are excluded.",
            ),
            S(
                "2. Eligibility and frequency",
                "Employees may work remotely for up to 3 days per week, subject to the needs of "
                "their team. At least 2 days per week must be spent in a Nordbank office.",
                "Remote days must be agreed with the line manager at least 5 working days in "
                "advance and recorded in the Workday absence calendar.",
                "Employees in trading, cash handling and branch roles are not eligible for remote "
                "work because their duties require physical presence.",
            ),
            S(
                "3. Working hours and availability",
                "Core hours are 10:00 to 15:00 CET on every working day, remote or not.",
                "- Employees must be reachable by Teams and telephone during core hours.",
                "- The statutory maximum of 10 working hours per day also applies at home.",
                "- Rest breaks of at least 30 minutes are required after 6 hours of work.",
            ),
            S(
                "4. Equipment and allowances",
                "Nordbank provides a laptop, headset and, on request, a second monitor.",
                "- A one-off home office equipment allowance of EUR 450 is paid on approval.",
                "- An internet allowance of EUR 25 per month is paid with the salary.",
                "- Printing customer data at home is prohibited.",
            ),
            S(
                "5. Working from abroad",
                "Working remotely from another country is allowed for a maximum of 20 working days "
                "per calendar year and only within the EU/EEA and Switzerland. Each stay requires "
                "prior approval by HR and Tax at least 15 working days in advance because of social "
                "security and permanent-establishment risks.",
            ),
            S(
                "6. Information security at home",
                "The Nordbank VPN must be used for all work. Screens must lock after 5 minutes of "
                "inactivity. Confidential conversations must not be held in public places. Loss of a "
                "device must be reported to the IT Service Desk (extension 4444) within 1 hour.",
            ),
        ),
    ),
    Policy(
        "travel-and-expenses-policy",
        "Travel and Expenses Policy",
        "docx",
        (EMPLOYEES,),
        "2025-02-10T08:30:00Z",
        5,
        "Chief Financial Officer",
        (
            S(
                "1. Principles",
                "Business travel must be necessary, economical and booked through the corporate "
                "travel portal operated by Nordbank's travel management company. Video conferencing "
                "should be used where a meeting does not require physical presence.",
            ),
            S(
                "2. Air and rail travel",
                "- Economy class for flights under 6 hours; business class for flights of 6 hours or more.",
                "- Rail travel in second class; first class is allowed for journeys over 4 hours.",
                "- Rail is mandatory for domestic journeys under 4 hours.",
                "- Flights must be booked at least 14 days in advance unless urgent.",
            ),
            S(
                "3. Hotels",
                "The standard hotel limit is EUR 180 per night including breakfast. In London, "
                "Paris, Zurich and New York the limit is EUR 250 per night. Exceptions need prior "
                "approval from the head of department.",
            ),
            S(
                "4. Meals and per diems",
                "- Germany: per diem of EUR 28 for a full day and EUR 14 for a partial day over 8 hours.",
                "- Business meals with clients: up to EUR 75 per person including drinks.",
                "- Alcohol is not reimbursed for internal meals.",
            ),
            S(
                "5. Ground transport and mileage",
                "Taxis and ride-hailing may be used when public transport is not reasonable. Use of a "
                "private car is reimbursed at EUR 0.30 per kilometre. Rental cars up to compact "
                "category only.",
            ),
            S(
                "6. Claims and approval",
                "Expense claims must be submitted in Concur within 30 days of the end of the trip. "
                "Receipts are required for every item above EUR 25. Claims up to EUR 2,500 are "
                "approved by the line manager; claims above EUR 2,500 also need approval by the head "
                "of department. Late claims (over 90 days) are rejected.",
            ),
        ),
    ),
    Policy(
        "code-of-conduct",
        "Code of Conduct",
        "html",
        (EVERYONE,),
        "2025-01-15T10:00:00Z",
        7,
        "Chief Compliance Officer",
        (
            S(
                "1. Our values",
                "Nordbank AG acts with integrity, prudence and respect. This Code applies to every "
                "employee, member of the Management Board and Supervisory Board, and to contractors "
                "working on Nordbank premises.",
            ),
            S(
                "2. Annual attestation and training",
                "Every employee must attest to this Code each year by 31 January. New joiners must "
                "complete the Code of Conduct e-learning within 30 days of their start date.",
            ),
            S(
                "3. Fair treatment of customers",
                "We explain products clearly, sell only products suitable for the customer and "
                "handle complaints within the deadlines of the Complaints Handling Policy.",
            ),
            S(
                "4. Personal conduct",
                "- Harassment and discrimination of any kind are not tolerated.",
                "- Personal investments follow the Personal Account Dealing Policy (minimum holding "
                "period of 30 days).",
                "- Gifts and hospitality follow the Gifts and Hospitality Policy.",
            ),
            S(
                "5. Reporting breaches",
                "Suspected breaches must be reported to Compliance within 24 hours of becoming aware "
                "of them, or through the whistleblowing channel. Retaliation against anyone who "
                "reports in good faith is a disciplinary offence.",
            ),
        ),
    ),
    Policy(
        "gifts-and-hospitality-policy",
        "Gifts and Hospitality Policy",
        "docx",
        (EMPLOYEES,),
        "2025-04-01T07:45:00Z",
        4,
        "Chief Compliance Officer",
        (
            S(
                "1. Purpose",
                "Gifts and hospitality must never influence, or appear to influence, a business "
                "decision. This policy implements the Anti-Bribery and Corruption Policy.",
            ),
            S(
                "2. Thresholds for accepting gifts",
                "- Gifts with a value of up to EUR 50 may be accepted without approval.",
                "- Gifts above EUR 50 and up to EUR 150 require line manager approval and an entry in "
                "the gifts register within 5 working days.",
                "- Gifts above EUR 150 must be politely declined or returned.",
                "- The total value of gifts from one counterparty may not exceed EUR 300 per calendar year.",
            ),
            S(
                "3. Hospitality",
                "Business meals and events up to EUR 100 per person are acceptable when the host "
                "attends. Hospitality above EUR 100 per person needs prior approval from Compliance. "
                "Travel and accommodation paid by a third party are never accepted.",
            ),
            S(
                "4. Prohibited items",
                "Cash, vouchers, loans and securities are never accepted, regardless of value. No "
                "gifts or hospitality may be offered to public officials or employees of supervisory "
                "authorities, including BaFin and the ECB.",
            ),
            S(
                "5. Offering gifts",
                "Gifts offered by Nordbank to clients are limited to EUR 50 per person and must carry "
                "Nordbank branding where possible.",
            ),
        ),
    ),
    Policy(
        "whistleblowing-policy",
        "Whistleblowing Policy",
        "html",
        (EVERYONE,),
        "2025-05-20T12:00:00Z",
        2,
        "Chief Compliance Officer",
        (
            S(
                "1. Who can report",
                "Employees, former employees, applicants, contractors and suppliers may report "
                "suspected wrongdoing, in line with the German Whistleblower Protection Act (HinSchG).",
            ),
            S(
                "2. Reporting channels",
                "- Online: the SpeakUp portal at https://speakup.nordbank.example (anonymous reports are possible).",
                "- Telephone hotline: +49 69 555 0142, staffed 24 hours a day by an external ombudsperson.",
                "- In person: the Head of Compliance or the external ombudsperson.",
            ),
            S(
                "3. Handling of reports",
                "The whistleblowing office acknowledges every report within 7 days and gives "
                "feedback on the follow-up measures within 3 months. Reports are documented and the "
                "documentation is deleted 3 years after the case is closed.",
            ),
            S(
                "4. Protection",
                "The identity of the whistleblower is shared only with the persons handling the "
                "case. Any retaliation is prohibited and will lead to disciplinary measures.",
            ),
        ),
    ),
    Policy(
        "conflicts-of-interest-policy",
        "Conflicts of Interest Policy",
        "html",
        (EMPLOYEES,),
        "2025-06-02T09:15:00Z",
        3,
        "Chief Compliance Officer",
        (
            S(
                "1. What is a conflict of interest",
                "A conflict arises when a personal, financial or family interest could affect an "
                "employee's judgement on behalf of Nordbank or its customers.",
            ),
            S(
                "2. Declaration",
                "Employees must declare actual or potential conflicts in the Conflicts Register "
                "within 10 working days of becoming aware of them, and confirm their declarations "
                "annually by 31 March.",
            ),
            S(
                "3. Outside business interests",
                "- Secondary employment and board mandates require prior written approval by HR and Compliance.",
                "- Shareholdings of more than 5% in a Nordbank customer or supplier must be declared.",
                "- Employees may not approve transactions with relatives or close friends.",
            ),
            S(
                "4. Management of conflicts",
                "Compliance decides on measures within 15 working days: information barriers, "
                "removal from a decision, or prohibition of the activity.",
            ),
        ),
    ),
    Policy(
        "personal-account-dealing-policy",
        "Personal Account Dealing Policy",
        "docx",
        (EMPLOYEES,),
        "2025-02-28T16:00:00Z",
        6,
        "Chief Compliance Officer",
        (
            S(
                "1. Scope",
                "This policy applies to personal transactions in financial instruments by employees "
                "designated as relevant persons under MiFID II and the German WpHG.",
            ),
            S(
                "2. Pre-clearance",
                "Relevant persons must obtain pre-clearance from Compliance before any personal "
                "trade. A pre-clearance is valid for 2 business days.",
            ),
            S(
                "3. Holding period and restrictions",
                "- Minimum holding period of 30 calendar days for all positions.",
                "- Trading in instruments on the Nordbank restricted list is prohibited.",
                "- Spread betting and CFDs are not permitted for relevant persons.",
            ),
            S(
                "4. Reporting",
                "Relevant persons disclose all securities accounts on joining and confirm their "
                "holdings every year by 31 January. Contract notes must be forwarded to Compliance "
                "within 5 business days of a trade.",
            ),
        ),
    ),
    Policy(
        "working-time-and-leave-policy",
        "Working Time and Leave Policy",
        "docx",
        (EMPLOYEES,),
        "2025-01-20T08:00:00Z",
        2,
        "Chief People Officer",
        (
            S(
                "1. Working time",
                "The standard working week is 39 hours for full-time employees. Overtime requires "
                "prior approval by the line manager and is compensated by time off in lieu.",
            ),
            S(
                "2. Annual leave",
                "- Full-time employees receive 30 working days of paid annual leave.",
                "- Up to 5 unused days may be carried over and must be taken by 31 March of the following year.",
                "- Leave of more than 10 consecutive working days needs 4 weeks' notice.",
            ),
            S(
                "3. Sickness",
                "Employees must notify their manager before the start of work on the first day of "
                "sickness. A medical certificate is required from the 3rd calendar day.",
            ),
            S(
                "4. Parental and special leave",
                "Parental leave follows the German BEEG. Nordbank grants 2 days of paid special leave "
                "for the birth of a child, marriage or the death of a close relative.",
            ),
        ),
    ),
    Policy(
        "social-media-policy",
        "Social Media Policy",
        "html",
        (EMPLOYEES,),
        "2025-07-07T11:00:00Z",
        1,
        "Head of Corporate Communications",
        (
            S(
                "1. Principles",
                "Only Corporate Communications speaks for Nordbank on social media. Employees may "
                "mention their employer but must make clear that opinions are their own.",
            ),
            S(
                "2. Prohibited content",
                "- No customer information, deal information or internal figures.",
                "- No comments on Nordbank share price, results or rumours.",
                "- No investment advice.",
            ),
            S(
                "3. Media enquiries",
                "Journalists' enquiries must be forwarded to press@nordbank.example within 2 hours.",
            ),
        ),
    ),
    Policy(
        "mandatory-training-policy",
        "Mandatory Training Policy",
        "docx",
        (EMPLOYEES,),
        "2025-08-12T09:30:00Z",
        2,
        "Chief People Officer",
        (
            S(
                "1. Mandatory courses",
                "- Code of Conduct: on joining and annually.",
                "- AML and Sanctions: on joining and annually (pass mark 80%).",
                "- Information Security Awareness: on joining and annually.",
                "- Data Protection (GDPR): on joining and every 2 years.",
            ),
            S(
                "2. Deadlines and escalation",
                "Annual courses must be completed by 30 November. Employees who miss a deadline by "
                "more than 30 days are reported to their head of department, and overdue training "
                "is taken into account in the annual performance review.",
            ),
            S(
                "3. Professional qualifications",
                "Nordbank pays up to EUR 3,000 per year for approved professional qualifications. "
                "Employees who leave within 24 months must repay the cost pro rata.",
            ),
        ),
    ),
)
