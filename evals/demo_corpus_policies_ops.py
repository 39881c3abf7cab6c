"""Employee policies of Nordbank AG, part two: security, compliance, operations and suppliers."""

from __future__ import annotations

from sovra.evals.demo_corpus_policies import EMPLOYEES, Policy, S

OPS_POLICIES: tuple[Policy, ...] = (
    Policy(
        "information-security-policy",
        "Information Security Policy",
        "html",
        (EMPLOYEES,),
        "2025-03-18T10:30:00Z",
        8,
        "Chief Information Security Officer",
        (
            S(
                "1. Information classification",
                "All information is classified as Public, Internal, Confidential or Strictly "
                "Confidential. Customer data is at least Confidential. The owner of the information "
                "sets the class; when unsure, treat it as Confidential.",
            ),
            S(
                "2. Authentication",
                "- Passwords must have at least 14 characters.",
                "- Multi-factor authentication is mandatory for remote access, email and all privileged accounts.",
                "- Passwords are changed only when a compromise is suspected, not on a fixed cycle.",
                "- Privileged accounts are reviewed every 90 days.",
            ),
            S(
                "3. Encryption",
                "Confidential data is encrypted at rest with AES-256 and in transit with TLS 1.2 or "
                "higher. Encryption keys are held in the Nordbank HSM and rotated every 12 months.",
            ),
            S(
                "4. Patching and vulnerabilities",
                "Critical vulnerabilities are patched within 14 days, or within 7 days for "
                "internet-facing systems. High vulnerabilities are patched within 30 days. External "
                "penetration tests are performed at least once a year.",
            ),
            S(
                "5. Access management",
                "Access follows least privilege. Line managers recertify their team's access "
                "quarterly. Leavers' accounts are disabled on their last working day.",
            ),
            S(
                "6. Removable media",
                "USB storage devices are blocked on all Nordbank endpoints. Exceptions require CISO "
                "approval and an encrypted device issued by IT.",
            ),
        ),
    ),
    Policy(
        "data-protection-policy",
        "Data Protection Policy (GDPR)",
        "docx",
        (EMPLOYEES,),
        "2025-05-05T08:00:00Z",
        4,
        "Data Protection Officer",
        (
            S(
                "1. Scope and principles",
                "Nordbank processes personal data lawfully, fairly and transparently, for specified "
                "purposes, limited to what is necessary, accurate, kept no longer than needed and "
                "secured (Article 5 GDPR). The Data Protection Officer can be reached at "
                "dpo@nordbank.example.",
            ),
            S(
                "2. Personal data breaches",
                "- Every suspected personal data breach must be reported to the DPO within 1 hour of discovery.",
                "- The DPO notifies the supervisory authority within 72 hours of Nordbank becoming "
                "aware of the breach, unless the breach is unlikely to result in a risk.",
                "- Affected customers are informed without undue delay when the risk is high.",
            ),
            S(
                "3. Data subject requests",
                "Requests for access, rectification, erasure or portability are answered within one "
                "month of receipt. The deadline may be extended by two further months for complex "
                "requests; the data subject is informed of the extension within the first month.",
            ),
            S(
                "4. Data protection impact assessments",
                "A DPIA is required before any processing likely to result in a high risk, including "
                "new credit scoring models, large-scale monitoring and any use of AI on customer "
                "data. The DPO must be consulted at least 4 weeks before go-live.",
            ),
            S(
                "5. International transfers",
                "Personal data may be transferred outside the EEA only to adequate countries or under "
                "Standard Contractual Clauses with a documented transfer impact assessment.",
            ),
        ),
    ),
    Policy(
        "aml-kyc-policy",
        "Anti-Money Laundering and Know Your Customer Policy",
        "html",
        (EMPLOYEES,),
        "2025-04-22T13:00:00Z",
        9,
        "Money Laundering Reporting Officer",
        (
            S(
                "1. Customer due diligence",
                "No account is opened and no transaction executed before the customer and any "
                "beneficial owner are identified and verified. Beneficial owners are natural persons "
                "holding more than 25% of shares or voting rights. Anonymous accounts are prohibited.",
            ),
            S(
                "2. Enhanced due diligence",
                "- Politically exposed persons require senior management approval before onboarding.",
                "- Customers linked to high-risk third countries on the EU list require EDD and "
                "source-of-wealth evidence.",
                "- Correspondent banking relationships require approval by the MLRO.",
            ),
            S(
                "3. Risk rating and periodic review",
                "Customers are rated low, medium or high risk. Reviews take place every year for "
                "high-risk customers, every 3 years for medium-risk and every 5 years for low-risk "
                "customers.",
            ),
            S(
                "4. Cash transactions",
                "Identification is required for cash transactions of EUR 10,000 or more, including "
                "linked transactions that together reach this amount. Cash deposits above EUR "
                "10,000 by non-customers are refused.",
            ),
            S(
                "5. Suspicious activity",
                "Employees report unusual activity to the MLRO through the internal AML alert form "
                "without delay. The MLRO files a suspicious activity report with the FIU within 24 "
                "hours of concluding that a report is required. Tipping off the customer is a "
                "criminal offence.",
            ),
            S(
                "6. Record keeping",
                "KYC documents and transaction records are kept for 5 years after the end of the "
                "business relationship.",
            ),
        ),
    ),
    Policy(
        "sanctions-policy",
        "Sanctions Compliance Policy",
        "html",
        (EMPLOYEES,),
        "2025-09-01T07:00:00Z",
        3,
        "Money Laundering Reporting Officer",
        (
            S(
                "1. Screening",
                "All customers, beneficial owners and payment parties are screened against EU, UN, "
                "UK and US (OFAC) lists at onboarding and daily thereafter. Payments are screened in "
                "real time before release.",
            ),
            S(
                "2. Alert handling",
                "Potential matches are reviewed by the Sanctions team within 24 hours. True matches "
                "are frozen immediately and reported to the Deutsche Bundesbank within 2 business "
                "days.",
            ),
            S(
                "3. Prohibited business",
                "Nordbank does not do business with persons in Crimea, Donetsk, Luhansk, Iran, North "
                "Korea, Syria or Cuba, regardless of whether a licence could be obtained.",
            ),
        ),
    ),
    Policy(
        "anti-bribery-and-corruption-policy",
        "Anti-Bribery and Corruption Policy",
        "html",
        (EMPLOYEES,),
        "2025-01-30T15:00:00Z",
        3,
        "Chief Compliance Officer",
        (
            S(
                "1. Zero tolerance",
                "Nordbank prohibits bribery in any form, including facilitation payments, whether "
                "made directly or through third parties.",
            ),
            S(
                "2. Third parties",
                "Agents, introducers and consultants undergo anti-bribery due diligence before "
                "engagement and every 2 years. Success fees above EUR 25,000 need Compliance "
                "approval.",
            ),
            S(
                "3. Donations and sponsorship",
                "Political donations are prohibited. Charitable donations above EUR 5,000 require "
                "approval by the Management Board member responsible.",
            ),
        ),
    ),
    Policy(
        "procurement-policy",
        "Procurement Policy",
        "docx",
        (EMPLOYEES,),
        "2025-02-03T09:00:00Z",
        6,
        "Chief Operating Officer",
        (
            S(
                "1. Scope",
                "This policy applies to every purchase of goods and services by Nordbank AG. "
                "Outsourcing arrangements additionally follow the Outsourcing Policy.",
            ),
            S(
                "2. Approval thresholds (total contract value)",
                "- Up to EUR 10,000: line manager; one quote is sufficient.",
                "- EUR 10,000 to EUR 100,000: head of department; at least 3 written quotes.",
                "- EUR 100,000 to EUR 500,000: Chief Financial Officer; competitive tender run by Procurement.",
                "- Above EUR 500,000: Management Board resolution; competitive tender and a Legal "
                "review of the contract.",
            ),
            S(
                "3. Supplier onboarding",
                "New suppliers are checked against sanctions lists, for financial standing and, for "
                "suppliers with access to Nordbank data, by Information Security. Onboarding takes "
                "about 10 working days.",
            ),
            S(
                "4. Contracts and payment",
                "Every purchase above EUR 10,000 needs a written contract reviewed by Legal. The "
                "standard payment term is 30 days from receipt of a correct invoice. Contracts must "
                "state an annual cap; payments above the cap are blocked until a contract amendment "
                "is signed.",
            ),
            S(
                "5. Splitting",
                "Splitting orders to stay below an approval threshold is prohibited and will be "
                "treated as a breach of this policy.",
            ),
        ),
    ),
    Policy(
        "outsourcing-policy",
        "Outsourcing Policy",
        "docx",
        (EMPLOYEES,),
        "2025-06-16T10:00:00Z",
        4,
        "Chief Operating Officer",
        (
            S(
                "1. Scope and definitions",
                "This policy implements the EBA Guidelines on outsourcing arrangements and section "
                "25b of the German Banking Act (KWG). An outsourcing is material when a failure "
                "would impair Nordbank's compliance, financial performance or continuity of a "
                "critical function.",
            ),
            S(
                "2. Before contracting",
                "- A risk analysis and due diligence are completed before signature.",
                "- Material outsourcings require approval by the Management Board and notification "
                "to BaFin at least 30 days before go-live.",
                "- An exit plan is documented for every material outsourcing.",
            ),
            S(
                "3. Contract requirements",
                "Contracts include audit and access rights for Nordbank, its auditors and BaFin, "
                "sub-outsourcing consent rights, data location clauses and termination rights with a "
                "notice period that allows an orderly exit (at least 6 months for material "
                "outsourcings).",
            ),
            S(
                "4. Register and monitoring",
                "The Outsourcing Officer keeps the outsourcing register and reviews every material "
                "outsourcing annually. Service levels are reported monthly to the service owner.",
            ),
        ),
    ),
    Policy(
        "it-acceptable-use-policy",
        "IT Acceptable Use Policy",
        "html",
        (EMPLOYEES,),
        "2025-03-25T14:00:00Z",
        5,
        "Chief Information Officer",
        (
            S(
                "1. Use of IT resources",
                "Nordbank IT resources are provided for business purposes. Limited personal use of "
                "email and internet is tolerated when it does not affect work or security.",
            ),
            S(
                "2. Software and cloud services",
                "- Software may only be installed from the Nordbank Software Centre.",
                "- Personal cloud storage and personal email must not be used for Nordbank data.",
                "- Public generative AI services must not receive Internal, Confidential or Strictly "
                "Confidential information; only the internally hosted assistant is approved.",
            ),
            S(
                "3. Monitoring",
                "Nordbank logs access to systems and may review logs for security and compliance "
                "purposes in line with the works council agreement. Recorded telephone lines are "
                "marked as such.",
            ),
            S(
                "4. Mobile devices",
                "Mobile devices with Nordbank data must be enrolled in mobile device management. "
                "Lost or stolen devices must be reported to the IT Service Desk within 1 hour so the "
                "device can be wiped.",
            ),
        ),
    ),
    Policy(
        "incident-reporting-procedure",
        "ICT Incident Reporting Procedure",
        "html",
        (EMPLOYEES,),
        "2025-01-17T09:00:00Z",
        3,
        "Chief Information Security Officer",
        (
            S(
                "1. Reporting an incident",
                "Any employee who notices an IT or security incident calls the IT Service Desk on "
                "extension 4444 or writes to security@nordbank.example immediately. Suspected "
                "phishing emails are reported with the Report Phishing button.",
            ),
            S(
                "2. Severity levels",
                "- P1 (critical): outage of a critical service or data breach; CISO informed within "
                "30 minutes; crisis team convened within 1 hour.",
                "- P2 (high): degraded critical service; resolution target 4 hours.",
                "- P3 (medium): non-critical service affected; resolution target 1 business day.",
                "- P4 (low): single user affected; resolution target 3 business days.",
            ),
            S(
                "3. Regulatory notification (DORA)",
                "Major ICT-related incidents are notified to BaFin: initial notification within 4 "
                "hours of classification as major and no later than 24 hours after detection, an "
                "intermediate report within 72 hours of the initial notification, and a final report "
                "within 1 month.",
            ),
            S(
                "4. Post-incident review",
                "A post-incident review is completed within 10 business days for every P1 and P2 "
                "incident and presented to the IT Risk Committee.",
            ),
        ),
    ),
    Policy(
        "business-continuity-policy",
        "Business Continuity Management Policy",
        "docx",
        (EMPLOYEES,),
        "2025-07-01T08:00:00Z",
        4,
        "Chief Operating Officer",
        (
            S(
                "1. Objectives",
                "Nordbank maintains business continuity plans so that critical services continue "
                "within their recovery time objectives after a disruption.",
            ),
            S(
                "2. Recovery objectives",
                "- Payments and card processing: RTO 4 hours, RPO 15 minutes.",
                "- Online banking: RTO 4 hours, RPO 1 hour.",
                "- Lending and back-office services: RTO 24 hours, RPO 24 hours.",
            ),
            S(
                "3. Business impact analysis and testing",
                "Every department updates its business impact analysis annually. Each business "
                "continuity plan is tested at least once a year; the data centre fail-over is tested "
                "twice a year.",
            ),
            S(
                "4. Alternate site and crisis management",
                "The alternate work site is located in Offenbach am Main with 250 seats. The crisis "
                "management team convenes within 1 hour of a declared crisis and is chaired by the "
                "Chief Operating Officer.",
            ),
        ),
    ),
    Policy(
        "record-retention-policy",
        "Record Retention Policy",
        "html",
        (EMPLOYEES,),
        "2025-02-14T11:30:00Z",
        3,
        "Chief Operating Officer",
        (
            S(
                "1. Principle",
                "Records are kept for the periods below and then destroyed securely, unless a legal "
                "hold applies. Periods start at the end of the calendar year in which the record was "
                "created, unless stated otherwise.",
            ),
            S(
                "2. Retention periods",
                "- Accounting records, annual financial statements and booking vouchers: 10 years.",
                "- Commercial and business correspondence, including email: 6 years.",
                "- KYC records: 5 years after the end of the customer relationship.",
                "- Recorded telephone conversations and electronic communications (MiFID II): 5 "
                "years, extended to 7 years on request of the supervisor.",
                "- Personnel files: 3 years after the employee leaves.",
                "- CCTV recordings: 72 hours, unless needed for an investigation.",
            ),
            S(
                "3. Legal holds",
                "Legal may place a legal hold on records relevant to litigation or investigations. "
                "Records under a legal hold must not be destroyed until Legal lifts the hold.",
            ),
            S(
                "4. Destruction",
                "Paper records are destroyed by a certified vendor to DIN 66399 security level P-4; "
                "electronic records are deleted from all systems and backups within 90 days.",
            ),
        ),
    ),
    Policy(
        "physical-security-and-clean-desk-policy",
        "Physical Security and Clean Desk Policy",
        "html",
        (EMPLOYEES,),
        "2025-08-25T10:00:00Z",
        2,
        "Head of Corporate Security",
        (
            S(
                "1. Access to premises",
                "Employees wear their badge visibly at all times. Visitors are registered at "
                "reception, accompanied at all times and their badges returned on leaving.",
            ),
            S(
                "2. Clean desk",
                "Confidential documents are locked away when the desk is left for more than 15 "
                "minutes and at the end of the day. Printouts are collected from printers "
                "immediately; uncollected printouts are shredded each evening.",
            ),
            S(
                "3. Lost badges",
                "A lost badge must be reported to Corporate Security within 2 hours so it can be "
                "blocked. A replacement badge costs EUR 15 after the second loss.",
            ),
        ),
    ),
    Policy(
        "complaints-handling-policy",
        "Complaints Handling Policy",
        "html",
        (EMPLOYEES,),
        "2025-04-09T09:00:00Z",
        2,
        "Head of Customer Service",
        (
            S(
                "1. Receiving complaints",
                "Complaints can be made in branches, by telephone, by letter or online. Each complaint "
                "is logged in the complaints system on the day it is received.",
            ),
            S(
                "2. Deadlines",
                "- Acknowledgement within 5 business days.",
                "- Final response within 15 business days for payment services complaints (PSD2), "
                "extendable to 35 business days in exceptional cases with a holding reply.",
                "- Final response within 8 weeks for all other complaints.",
            ),
            S(
                "3. Escalation",
                "Customers who are not satisfied are informed of the BaFin arbitration board and the "
                "banking ombudsman. Complaint statistics are reported quarterly to the Management "
                "Board.",
            ),
        ),
    ),
    Policy(
        "model-risk-and-ai-use-policy",
        "Model Risk Management and AI Use Policy",
        "docx",
        (EMPLOYEES,),
        "2025-10-06T08:00:00Z",
        1,
        "Chief Risk Officer",
        (
            S(
                "1. Model inventory and tiers",
                "Every model, including AI systems, is registered in the model inventory and "
                "assigned a tier: Tier 1 (material to capital, credit decisions or customers), Tier 2 "
                "(internal decision support) or Tier 3 (low impact).",
            ),
            S(
                "2. Validation",
                "- Tier 1 models are independently validated before use and annually thereafter.",
                "- Tier 2 models are validated before use and every 2 years.",
                "- Tier 3 models are reviewed every 3 years.",
            ),
            S(
                "3. Generative AI",
                "Generative AI assistants may be used only on approved, self-hosted models. Answers "
                "must cite their sources; a human remains responsible for any decision. Every "
                "prompt and answer is retained in the audit log for 6 years.",
            ),
        ),
    ),
)
