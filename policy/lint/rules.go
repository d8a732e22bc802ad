package lint

// registry lists every rule in ID order. IDs are allocated in the order rules land and are never
// reused: a rule that goes away leaves a gap.
var registry = []*Rule{
	ruleNotWellFormed,             // VF001
	ruleRootNotDomain,             // VF002
	ruleTeamingUnknownAttr,        // VF003
	ruleTeamingTypeInvalid,        // VF004
	ruleTransientNoPersistent,     // VF005
	rulePersistentNotAllowed,      // VF006
	rulePersistentUnknownAlias,    // VF007
	rulePersistentNotStandby,      // VF008
	ruleDuplicateTransient,        // VF009
	ruleStandbyWithoutPrimary,     // VF010
	ruleHostdevTeamingNotTrans,    // VF011
	ruleHostdevTeamingNotPCI,      // VF012
	ruleTransientInterfaceType,    // VF013
	ruleStandbyAliasInvalid,       // VF014
	ruleAliasDuplicate,            // VF015
	rulePairMACMismatch,           // VF016
	rulePairMACMissing,            // VF017
	ruleHostdevPrimaryMAC,         // VF018
	ruleMACDuplicate,              // VF019
	ruleStandbyModel,              // VF020
	ruleStandbyLinkDown,           // VF021
	ruleStandbySource,             // VF022
	ruleStandbyOnPool,             // VF023
	rulePrimaryNotHotpluggable,    // VF024
	ruleNoFreeHotplugPort,         // VF025
	rulePairSharesSlot,            // VF026
	ruleHostdevBlocksMigration,    // VF027
	ruleAssignedNICWithoutStandby, // VF028
	ruleEmulatedPrimaryROM,        // VF029
	ruleVFIOPrimaryROMBar,         // VF030
	ruleWindowsVIOPROT,            // VF031
	ruleStorageNoLUNPath,          // VF032
	ruleStorageNVMe,               // VF033
	ruleStorageVirtioBlk,          // VF034
	ruleStorageWWNMismatch,        // VF035
	rulePairMetadata,              // VF036
	ruleSuppression,               // VF037
	ruleSchema,                    // VF038
	ruleBondTeaming,               // VF039
	ruleBondMAC,                   // VF040
	ruleParkedRecord,              // VF041
}
