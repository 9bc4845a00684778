"""The task contract: LEADS' six tasks plus PICO spans, each defined once.

Each task has a pydantic input model, the answer a model emits (with LEADS' JSON keys), the
validated output leads uses, and the LEADS-style prompt. Any engine runs any task:
``leads.engines.get_engine("classic").run(TASKS["eligibility"], inp)``.
"""

from leads.tasks._base import AnswerError, Evidence, Message, Task, TaskInput, TaskOutput
from leads.tasks.criteria import CriteriaInput, CriteriaOutput, CriteriaTask, GeneratedCriterion
from leads.tasks.eligibility import (
    Criterion,
    CriterionVerdict,
    EligibilityInput,
    EligibilityOutput,
    EligibilityTask,
)
from leads.tasks.extraction import (
    ArmDesignTask,
    ArmsInput,
    ArmsOutput,
    CharacteristicsInput,
    CharacteristicsOutput,
    FieldSpec,
    Group,
    ParticipantsInput,
    ParticipantsOutput,
    ParticipantStatisticsTask,
    PicoInput,
    PicoOutput,
    PicoTask,
    ResultsInput,
    ResultsOutput,
    StudyCharacteristicsTask,
    TrialResultsTask,
)
from leads.tasks.search_query import QueryInput, QueryOutput, SearchQueryTask

TASKS: dict[str, Task] = {
    task.name: task
    for task in (
        SearchQueryTask(),
        EligibilityTask(),
        StudyCharacteristicsTask(),
        ArmDesignTask(),
        ParticipantStatisticsTask(),
        TrialResultsTask(),
        PicoTask(),
        CriteriaTask(),
    )
}


def get_task(name: str) -> Task:
    from leads.errors import LeadsError

    try:
        return TASKS[name]
    except KeyError:
        raise LeadsError(f"unknown task {name!r}; tasks: {', '.join(TASKS)}") from None


__all__ = [
    "TASKS",
    "AnswerError",
    "ArmDesignTask",
    "ArmsInput",
    "ArmsOutput",
    "CharacteristicsInput",
    "CharacteristicsOutput",
    "CriteriaInput",
    "CriteriaOutput",
    "CriteriaTask",
    "Criterion",
    "CriterionVerdict",
    "EligibilityInput",
    "EligibilityOutput",
    "EligibilityTask",
    "Evidence",
    "FieldSpec",
    "GeneratedCriterion",
    "Group",
    "Message",
    "ParticipantStatisticsTask",
    "ParticipantsInput",
    "ParticipantsOutput",
    "PicoInput",
    "PicoOutput",
    "PicoTask",
    "QueryInput",
    "QueryOutput",
    "ResultsInput",
    "ResultsOutput",
    "SearchQueryTask",
    "StudyCharacteristicsTask",
    "Task",
    "TaskInput",
    "TaskOutput",
    "TrialResultsTask",
    "get_task",
]
