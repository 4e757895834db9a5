# Key4hep steering file for `k4run`: 10 events with an EDM4hep EventHeader collection, written
# to events.edm4hep.root in the working directory (the job's /outputs).
from Configurables import ApplicationMgr, EventHeaderCreator, PodioOutput, k4DataSvc
from Gaudi.Configuration import INFO

data = k4DataSvc("EventDataSvc")
header = EventHeaderCreator("EventHeaderCreator", runNumber=42, eventNumberOffset=0)
out = PodioOutput("out", filename="events.edm4hep.root", outputCommands=["keep *"])

ApplicationMgr(TopAlg=[header, out], EvtSel="NONE", EvtMax=10, ExtSvc=[data], OutputLevel=INFO)
